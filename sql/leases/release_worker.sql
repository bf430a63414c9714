-- pgqrs: ending every lease a worker holds, at once.

-- An operator (or a supervisor) that knows a worker is gone need not wait for its leases to run out: this
-- expires them now. Nothing else changes here: the next dequeue (or lease_run) of each run settles the lost
-- delivery exactly as it settles a lease that ran out by itself (pgqrs._settle_lost_lease: the steps in flight
-- fail under their policy), so a worker released this way and one that timed out leave the same history. The
-- queues' idle workers are woken. If the worker is in fact alive, its next write on such a run raises QR004.
create or replace function pgqrs.release_worker_leases(p_worker bigint)
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_now timestamptz := pgqrs.now();
    v_count integer;
    v_queues bigint[];
begin
    perform pgqrs._check_worker(p_worker);
    -- lock order: message rows (in id order, as every batch of them is locked)
    perform from pgqrs.messages as m
    where m.worker_id = p_worker and m.lease_token is not null and m.visible_at > v_now
    order by m.message_id
    for update;
    with expired as (
        update pgqrs.messages as m set visible_at = v_now
        where m.worker_id = p_worker and m.lease_token is not null and m.visible_at > v_now
        returning m.queue_id
    )
    select count(*), array_agg(distinct e.queue_id) into v_count, v_queues from expired as e;
    perform pgqrs._notify_queue(q, v_now) from unnest(v_queues) as q;
    return v_count;
end
$$;
comment on function pgqrs.release_worker_leases(bigint) is
'Expires now every lease worker p_worker holds (a worker known to be gone), so its runs are deliverable at once;
the next delivery of each settles the lost lease as for any expired one (pgqrs._settle_lost_lease). Returns how
many leases it ended. Raises QR008 (unknown worker).';
