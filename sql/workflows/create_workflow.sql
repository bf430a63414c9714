-- pgqrs: defining a workflow (and its queue).

-- Idempotent: the same name always yields the same row. A policy or a limit given again replaces the stored one;
-- one not given (NULL) keeps it, so a worker that defines its workflow at start-up does not undo the limits an
-- operator set (pgqrs.set_workflow_limits sets them exactly, and removes them).
create or replace function pgqrs.create_workflow(
    p_name text,
    p_retry_policy jsonb default null,
    p_max_concurrency integer default null,
    p_max_concurrency_per_key integer default null,
    p_rate_limit jsonb default null,
    p_retention interval default null
)
returns pgqrs.workflows
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_workflow pgqrs.workflows;
    v_policy jsonb := pgqrs._retry_policy(p_retry_policy);
    v_rate_limit jsonb := pgqrs._rate_limit(p_rate_limit);
begin
    perform pgqrs._check_name('workflow name', p_name);
    perform pgqrs._check_limit('max_concurrency', p_max_concurrency);
    perform pgqrs._check_limit('max_concurrency_per_key', p_max_concurrency_per_key);
    insert into pgqrs.workflows as w (name, retry_policy, max_concurrency, max_concurrency_per_key, rate_limit)
    values (p_name, v_policy, p_max_concurrency, p_max_concurrency_per_key, v_rate_limit)
    on conflict (name) do update
        set retry_policy = case when p_retry_policy is null then w.retry_policy else excluded.retry_policy end,
            max_concurrency = coalesce(excluded.max_concurrency, w.max_concurrency),
            max_concurrency_per_key = coalesce(excluded.max_concurrency_per_key, w.max_concurrency_per_key),
            rate_limit = coalesce(excluded.rate_limit, w.rate_limit)
        where
            (p_retry_policy is not null and w.retry_policy is distinct from excluded.retry_policy)
            or coalesce(excluded.max_concurrency, w.max_concurrency) is distinct from w.max_concurrency
            or coalesce(excluded.max_concurrency_per_key, w.max_concurrency_per_key)
            is distinct from w.max_concurrency_per_key
            or coalesce(excluded.rate_limit, w.rate_limit) is distinct from w.rate_limit
    returning * into v_workflow;
    if v_workflow.workflow_id is null then
        select * into strict v_workflow from pgqrs.workflows as w where w.name = p_name;
    end if;
    insert into pgqrs.queues (name, workflow_id) values (p_name, v_workflow.workflow_id)
    on conflict do nothing;
    if p_retention is not null then
        perform pgqrs.set_workflow_retention(p_name, p_retention);
    end if;
    return v_workflow;
end
$$;
comment on function pgqrs.create_workflow(text, jsonb, integer, integer, jsonb, interval) is
'Creates the workflow definition and its queue (same name); idempotent. p_retry_policy: {max_attempts, backoff
fixed|exponential, base_seconds, max_seconds, jitter}; limits (see pgqrs.set_workflow_limits): p_max_concurrency,
p_max_concurrency_per_key (1-1000000), p_rate_limit ({"limit": n, "period": "1 minute"}). Each one given replaces
the stored one; NULL keeps it. p_retention: how long its finished runs are kept (pgqrs.set_workflow_retention;
NULL keeps the stored one). Returns the row. Raises 22023 for a bad name, policy, limit or retention.';
