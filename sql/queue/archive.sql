-- pgqrs: retiring messages to the archive.

-- Moves a message to the archive and announces its run's end: every finish of a run (complete_run, fail_run, a
-- last failed step or lost lease, cancel_run) comes here. Called with the message row already locked.
create or replace function pgqrs._archive_message(p_message_id bigint, p_outcome text)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
    v_frees_a_slot boolean;
begin
    -- the limits looked up in the same statement (every finish comes here)
    with retired as (
        delete from pgqrs.messages as m where m.message_id = p_message_id returning m.*
    ), archived as (
        insert into pgqrs.messages_archive (
            message_id, queue_id, outcome, enqueued_at, archived_at, read_count, worker_id
        )
        select r.message_id, r.queue_id, p_outcome, r.enqueued_at, pgqrs._now(), r.read_count, r.worker_id
        from retired as r
        returning queue_id
    )
    select a.queue_id, w.max_concurrency is not null or w.max_concurrency_per_key is not null
    into v_queue_id, v_frees_a_slot
    from archived as a join pgqrs.queues as q using (queue_id) join pgqrs.workflows as w using (workflow_id);
    if v_frees_a_slot then  -- a slot of a limited workflow is free: wake the workers waiting for one
        perform pgqrs._notify_queue(v_queue_id, pgqrs._now());
    end if;
    -- the run's end, announced on pgqrs_runs by its token (sql/runs/notify_finished.sql)
    perform pg_notify(
        'pgqrs_runs',
        (select left(encode(sha256(k.secret || convert_to(p_message_id::text, 'UTF8')), 'hex'), 16)
         from pgqrs.channel_key as k)
    );
end
$$;

-- Finishing a run (complete_run / fail_run) already retires its message, so for the seeds'
-- `run.complete(...)` then `consumer.archive(msg.id)` this is a no-op. It answers true to the worker that held
-- the message when the run finished (the archive records it), as a queue's archive answers the consumer that
-- retired the message (pgqrs 0.15's manual loop checks it); false to anyone else. Archiving the message of a run
-- that is still live would lose the run, so that is refused.
create or replace function pgqrs.archive(p_message_id bigint, p_worker bigint default null)
returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
set plan_cache_mode = force_generic_plan
as $$
declare
    v_status text;
    v_holder bigint;
begin
    if p_worker is not null then
        perform pgqrs._check_worker(p_worker);
    end if;
    select r.status into v_status from pgqrs.runs as r where r.run_id = p_message_id;
    if v_status is null then
        raise exception using errcode = 'QR002', message = format('unknown message: %s', p_message_id);
    end if;
    select a.worker_id into v_holder from pgqrs.messages_archive as a where a.message_id = p_message_id;
    if found then
        return coalesce(v_holder = p_worker, false);
    end if;
    raise exception using
        errcode = 'QR003',
        message = format('message %s belongs to run %s, which is %s', p_message_id, p_message_id, v_status),
        hint = 'Finish the run with pgqrs.complete_run or pgqrs.fail_run; that archives its message.';
end
$$;
comment on function pgqrs.archive(bigint, bigint) is
'Retires a message; idempotent: finishing a run archives its message, so this changes nothing then and returns
true when p_worker held the message at the finish, else false. Raises QR002 (unknown message), QR003 (the run is still live), QR008 (unknown worker).';
