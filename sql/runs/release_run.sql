-- pgqrs: a worker handing a run back.

-- A worker hands a run back at once instead of letting the lease run out: when it shuts down (p_error NULL:
-- no failure, the run is visible now), or when one of its engine calls failed on a live connection (a statement
-- timeout, a value the server refuses...). The second is a failed delivery: counted like a lost lease (see
-- _settle_lost_lease; a delivery that recorded a step starts the count again), delayed by the workflow's
-- backoff, and once the count reaches max_attempts the run ends ERROR (kind engine_call_failed, the cause
-- kept), so an engine call that fails the same way every time cannot loop.
create or replace function pgqrs.release_run(p_run bigint, p_lease_token uuid, p_error jsonb default null)
returns text
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_message pgqrs.messages;
    v_now timestamptz := pgqrs.now();
    v_policy jsonb;
    v_count integer;
    v_visible_at timestamptz := pgqrs.now();
    v_error jsonb;
begin
    if jsonb_typeof(p_error) <> 'object' then
        raise exception using errcode = '22023', message = 'the error of a release must be a JSON object';
    end if;
    if p_error is not null then  -- may end the run: its parent's children lock first (sql/waits/children.sql)
        perform pgqrs._lock_parent_of(p_run);
    end if;
    v_message := pgqrs._lease(p_run, p_lease_token);
    if p_error is not null then
        select w.retry_policy into strict v_policy
        from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id) where r.run_id = p_run
        for no key update of r;
        v_count := pgqrs._count_failed_delivery(p_run, v_message.leased_at, v_message.failed_deliveries);
        v_error := jsonb_build_object(
            'kind', 'engine_call_failed', 'type', 'EngineCallFailed', 'deliveries', v_count, 'cause', p_error,
            'message', format('an engine call failed in %s deliveries in a row: %s', v_count,
                              coalesce(p_error ->> 'message', p_error::text)));
        if v_count >= pgqrs._max_attempts(v_policy) then
            perform pgqrs._end_run_failed(p_run, v_error);
            return 'ERROR';
        end if;
        v_visible_at := v_now + pgqrs._retry_delay(v_policy, v_count);
    end if;
    update pgqrs.runs as r set status = 'QUEUED', error = coalesce(v_error, r.error), updated_at = v_now
    where r.run_id = p_run;
    if v_count is not null then
        update pgqrs.messages as m set failed_deliveries = v_count where m.message_id = p_run;
    end if;
    perform pgqrs._release_lease(p_run, v_message.queue_id, v_visible_at);
    return 'QUEUED';
end
$$;
comment on function pgqrs.release_run(bigint, uuid, jsonb) is
'Gives a leased run back to its queue without recording a step failure. p_error NULL (a worker shutting down):
QUEUED, visible now, NOTIFY. p_error given (the cause of a failed engine call): a failed delivery, visible after
the workflow''s backoff; after max_attempts such deliveries in a row without a step recorded, the run ends ERROR
(kind engine_call_failed) as a dead letter. Returns the new status. Raises QR004 (lease), QR009 (cancelled),
QR002/QR003, 22023.';
