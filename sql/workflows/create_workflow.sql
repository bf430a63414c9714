-- pgqrs: defining a workflow (and its queue).

-- Idempotent: the same name always yields the same row. A policy given again replaces the stored one.
create or replace function pgqrs.create_workflow(p_name text, p_retry_policy jsonb default null)
returns pgqrs.workflows
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_workflow pgqrs.workflows;
    v_policy jsonb := pgqrs._retry_policy(p_retry_policy);
begin
    perform pgqrs._check_name('workflow name', p_name);
    insert into pgqrs.workflows as w (name, retry_policy)
    values (p_name, v_policy)
    on conflict (name) do update
        set retry_policy = excluded.retry_policy
        where p_retry_policy is not null and w.retry_policy is distinct from excluded.retry_policy
    returning * into v_workflow;
    if v_workflow.workflow_id is null then
        select * into strict v_workflow from pgqrs.workflows as w where w.name = p_name;
    end if;
    insert into pgqrs.queues (name, workflow_id) values (p_name, v_workflow.workflow_id)
    on conflict do nothing;
    return v_workflow;
end
$$;
comment on function pgqrs.create_workflow(text, jsonb) is
'Creates the workflow definition and its queue (same name); idempotent. p_retry_policy: {max_attempts, backoff
fixed|exponential, base_seconds, max_seconds, jitter}; when given it replaces the stored policy. Returns the row.
Raises 22023 for a bad name or policy.';
