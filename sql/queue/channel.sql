-- pgqrs: queue names, and the NOTIFY channel that wakes a queue's workers.

-- Resolves a queue name, raising QR001 for an unknown one (22023 for a malformed one).
create or replace function pgqrs._queue_id(p_queue text)
returns bigint
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
begin
    select q.queue_id into v_queue_id from pgqrs.queues as q where q.name = p_queue;
    if v_queue_id is null then
        perform pgqrs._check_name('workflow name', p_queue);
        raise exception using
            errcode = 'QR001',
            message = format('unknown workflow: %s', p_queue),
            hint = 'Create it first with pgqrs.create_workflow(name).';
    end if;
    return v_queue_id;
end
$$;

create or replace function pgqrs.queue_channel(p_queue text)
returns text
language sql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
    select 'pgqrs_q' || pgqrs._queue_id(p_queue)
$$;
comment on function pgqrs.queue_channel(text) is
'The NOTIFY channel of a queue. The payload is empty when work is visible now, or the epoch seconds at which
it becomes visible (a delayed start or a retry). Raises QR001 for an unknown queue.';

-- Wakes the queue's listeners: now, or at p_visible_at (sent as epoch seconds so a worker can sleep until then).
-- pgqrs.trigger inlines the same pg_notify (its hot path).
create or replace function pgqrs._notify_queue(p_queue_id bigint, p_visible_at timestamptz)
returns void
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    perform pg_notify(
        'pgqrs_q' || p_queue_id,
        case when p_visible_at <= pgqrs._now() then '' else extract(epoch from p_visible_at)::text end
    );
end
$$;
