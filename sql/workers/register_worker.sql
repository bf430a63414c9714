-- pgqrs: registering and stopping workers.

create or replace function pgqrs.register_worker(
    p_name text, p_hostname text default '', p_port integer default null, p_queue text default null
)
returns bigint
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_queue_id bigint;
    v_worker_id bigint;
begin
    perform pgqrs._check_name('worker name', p_name);
    if p_queue is null then
        raise exception using errcode = '22023', message = 'a worker needs a queue';
    end if;
    v_queue_id := pgqrs._queue_id(p_queue);
    if length(coalesce(p_hostname, '')) > 255 or p_port not between 0 and 65535 then
        raise exception using errcode = '22023', message = 'hostname must be at most 255 characters, port 0-65535';
    end if;
    insert into pgqrs.workers as w (name, hostname, port, queue_id, status, started_at, heartbeat_at)
    values (p_name, coalesce(p_hostname, ''), p_port, v_queue_id, 'ACTIVE', pgqrs.now(), pgqrs.now())
    on conflict (name) do update
        set hostname = excluded.hostname, port = excluded.port, queue_id = excluded.queue_id,
            status = 'ACTIVE', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
    returning w.worker_id into v_worker_id;
    return v_worker_id;
end
$$;
comment on function pgqrs.register_worker(text, text, integer, text) is
'Registers a worker for a queue and returns its id; an upsert by name, so a restarted worker takes its row
back. The port is informational. Raises QR001 (unknown queue), 22023 (bad name, hostname or port).';

create or replace function pgqrs.stop_worker(p_worker bigint)
returns void
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    update pgqrs.workers set status = 'STOPPED', heartbeat_at = pgqrs.now() where worker_id = p_worker;
    if not found then
        raise exception using errcode = 'QR008', message = format('unknown worker: %s', p_worker);
    end if;
end
$$;
comment on function pgqrs.stop_worker(bigint) is
'Marks a worker STOPPED (graceful shutdown). Leases it holds stay until released or expired. Raises QR008.';

create or replace function pgqrs._check_worker(p_worker bigint)
returns void
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    if p_worker is null or not exists (select from pgqrs.workers as w where w.worker_id = p_worker) then
        raise exception using
            errcode = 'QR008',
            message = format('unknown worker: %s', coalesce(p_worker::text, 'NULL')),
            hint = 'Register it first with pgqrs.register_worker.';
    end if;
end
$$;
