-- pgqrs: flow control. A workflow's limits (workflows.max_concurrency, max_concurrency_per_key, rate_limit), the
-- order runs are delivered in (priority, then FIFO), and how pgqrs.dequeue keeps to the limits.
--
-- A run holds a slot while its message holds a live lease (lease_token set, visible_at ahead): a run that
-- waits, pauses, retries later or has finished holds none, and a lease that expires frees its slot by itself.
-- The dequeues of a limited workflow take its queue row lock first, so two workers never both count the same
-- free slot; the dequeues of an unlimited workflow take no such lock and count nothing. When a slot frees (a
-- lease released or a run finished: pgqrs._release_lease, pgqrs._archive_message) the queue's listeners are
-- notified, and a rate-limited dequeue that leaves work behind notifies them for the time the next delivery
-- is allowed: workers sleep until then, as they do for a retry.

-- A limit: NULL (none) or 1-1000000.
create or replace function pgqrs._check_limit(p_what text, p_limit integer)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_limit not between 1 and 1000000 then
        raise exception using errcode = '22023', message = format('%s must be 1-1000000, got %s', p_what, p_limit);
    end if;
end
$$;

-- A rate limit as stored: {"limit": 1-1000000, "period": an interval of 1 second to 1 day} (NULL: none).
create or replace function pgqrs._rate_limit(p_rate jsonb)
returns jsonb
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_limit numeric;
    v_period interval;
begin
    if p_rate is null or p_rate = 'null'::jsonb then
        return null;
    end if;
    if
        jsonb_typeof(p_rate) <> 'object' or not p_rate ?& array['limit', 'period']
        or exists (select from jsonb_object_keys(p_rate) as k where k not in ('limit', 'period'))
        or jsonb_typeof(p_rate -> 'limit') <> 'number' or jsonb_typeof(p_rate -> 'period') <> 'string'
    then
        raise exception using
            errcode = '22023',
            message = format('a rate limit is {"limit": n, "period": "1 minute"}, got %s', left(p_rate::text, 200));
    end if;
    v_limit := (p_rate ->> 'limit')::numeric;
    if v_limit <> trunc(v_limit) or v_limit not between 1 and 1000000 then
        raise exception using
            errcode = '22023', message = format('rate limit must be a whole number 1-1000000, got %s', v_limit);
    end if;
    begin
        v_period := (p_rate ->> 'period')::interval;
    exception when invalid_datetime_format or datetime_field_overflow or interval_field_overflow then
        v_period := null;
    end;
    if v_period is null or v_period not between interval '1 second' and interval '1 day' then
        raise exception using
            errcode = '22023',
            message = format('rate limit period must be an interval of 1 second to 1 day, got %s',
                             left(p_rate ->> 'period', 100));
    end if;
    return jsonb_build_object('limit', v_limit::integer, 'period', v_period::text);
end
$$;

-- Ops: set a workflow's limits as given, NULL removing one. Waiting workers are woken: there may be room now.
create or replace function pgqrs.set_workflow_limits(
    p_workflow text,
    p_max_concurrency integer default null,
    p_max_concurrency_per_key integer default null,
    p_rate_limit jsonb default null
)
returns pgqrs.workflows
language plpgsql
volatile
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_workflow pgqrs.workflows;
    v_queue_id bigint := pgqrs._queue_id(p_workflow);
begin
    perform pgqrs._check_limit('max_concurrency', p_max_concurrency);
    perform pgqrs._check_limit('max_concurrency_per_key', p_max_concurrency_per_key);
    update pgqrs.workflows as w
    set max_concurrency = p_max_concurrency, max_concurrency_per_key = p_max_concurrency_per_key,
        rate_limit = pgqrs._rate_limit(p_rate_limit)
    from pgqrs.queues as q
    where q.queue_id = v_queue_id and w.workflow_id = q.workflow_id
    returning w.* into v_workflow;
    perform pgqrs._notify_queue(v_queue_id, pgqrs._now());
    return v_workflow;
end
$$;
comment on function pgqrs.set_workflow_limits(text, integer, integer, jsonb) is
'Sets the limits of workflow p_workflow exactly as given (NULL: no such limit): p_max_concurrency and
p_max_concurrency_per_key (1-1000000: runs holding a lease at once, in all, and per concurrency key),
p_rate_limit ({"limit": 1-1000000, "period": 1 second to 1 day}: deliveries in any such window). Takes effect at
the next dequeue; listening workers are notified. Returns the workflow row. Raises QR001, 22023.';

-- The visible messages of a queue in delivery order: the highest priority first, FIFO within one (visible_at,
-- message_id), at most p_limit, locked (SKIP LOCKED). The priorities present are walked from the highest down
-- through messages_ready_idx (one probe each: a loose index scan), and each is an index range, so the cost does
-- not grow with the depth of the queue, nor with the rows of a priority that are leased or delayed.
-- p_version: the version of the worker's code (NULL: unversioned). It takes the runs of that version and the runs
-- without one that were never delivered (the first delivery sets a run's version: sql/queue/dequeue.sql); an
-- unversioned worker takes the runs without a version. Runs of other versions are read past in the index.
create or replace function pgqrs._ready_messages(
    p_queue_id bigint, p_now timestamptz, p_limit integer, p_version text
)
returns table (message_id bigint, concurrency_key text)
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
#variable_conflict use_column
begin
    return query
    with recursive levels (priority) as (
        select max(m.priority) from pgqrs.messages as m where m.queue_id = p_queue_id
        union all
        select (
            select max(m.priority) from pgqrs.messages as m
            where m.queue_id = p_queue_id and m.priority < l.priority
        )
        from levels as l where l.priority is not null
    )
    select r.message_id, r.concurrency_key
    from levels as l
    cross join lateral (
        select m.message_id, m.concurrency_key
        from pgqrs.messages as m
        where
            m.queue_id = p_queue_id and m.priority = l.priority and m.visible_at <= p_now
            and (m.version = p_version or m.version is null and (p_version is null or m.read_count = 0))
        order by m.visible_at, m.message_id
        limit p_limit
        for update skip locked
    ) as r
    limit p_limit;
end
$$;

-- The messages a dequeue of a limited workflow may lease now (at most p_batch_size), locked, the rate limit's
-- log written. Holds the queue row lock until the dequeue commits (see the top of this file).
create or replace function pgqrs._pick_within_limits(
    p_queue_id bigint, p_max_concurrency integer, p_max_per_key integer, p_rate_limit jsonb, p_batch_size integer,
    p_now timestamptz, p_version text
)
returns bigint[]
language plpgsql
volatile
set search_path = pg_catalog, pgqrs, pg_temp
as $$
declare
    v_room integer := p_batch_size;
    v_period interval := (p_rate_limit ->> 'period')::interval;
    v_picked bigint[] := '{}'::bigint[];
    v_per_key jsonb;  -- key -> its runs holding a lease, with this batch's picks
    v_full text[];  -- the keys at their limit before this batch
    v_candidate record;
    v_free integer;  -- slots free under max_concurrency
    v_allowed integer;  -- deliveries the rate limit's window allows
    v_key_load integer;  -- a key's leases plus this dequeue's picks of it
begin
    perform from pgqrs.queues as q where q.queue_id = p_queue_id for update;
    if p_max_concurrency is not null then
        select p_max_concurrency - count(*) into v_free from pgqrs.messages as m
        where m.queue_id = p_queue_id and m.lease_token is not null and m.visible_at > p_now;
        v_room := least(v_room, v_free);
    end if;
    if v_period is not null then
        -- The window is counted, not the whole log: a dequeue's clock is its statement's start, so one that
        -- waited for the queue lock comes after another with a later clock, and still needs deliveries that
        -- left the other's window. The log keeps a minute more than the period for such a one.
        delete from pgqrs.rate_limit_log as g
        where g.queue_id = p_queue_id and g.delivered_at <= p_now - v_period - interval '1 minute';
        select greatest((p_rate_limit ->> 'limit')::integer - count(*), 0) into v_allowed  -- 0: a lowered limit
        from pgqrs.rate_limit_log as g where g.queue_id = p_queue_id and g.delivered_at > p_now - v_period;
        if
            v_allowed < v_room
            and (select count(*) from pgqrs._ready_messages(p_queue_id, p_now, v_allowed + 1, p_version)) > v_allowed
        then
            -- more is ready than the window allows: listeners wake when its oldest delivery (or, in an empty
            -- window, the ones made now) leaves it
            perform pgqrs._notify_queue(p_queue_id, coalesce((
                select min(g.delivered_at) from pgqrs.rate_limit_log as g
                where g.queue_id = p_queue_id and g.delivered_at > p_now - v_period
            ), p_now) + v_period);
        end if;
        v_room := least(v_room, v_allowed);
    end if;
    if v_room <= 0 then
        return v_picked;
    end if;
    if p_max_per_key is null then
        v_picked := array(select r.message_id from pgqrs._ready_messages(p_queue_id, p_now, v_room, p_version) as r);
    else
        -- a key at its limit is passed by, not waited for: the runs of other keys flow past it. The keys at
        -- their limit when the dequeue starts are left out by the walk itself, so a backlog of theirs is read
        -- past in the index, never handed out, however deep; a key that reaches its limit with this batch's picks
        -- is passed by in the loop, for at most 10 x the room + 100 candidates. The loop's cursor locks the
        -- candidates as it fetches them (10 at a time), not all of them up front.
        select coalesce(jsonb_object_agg(h.key, h.held), '{}'::jsonb),
               coalesce(array_agg(h.key) filter (where h.held >= p_max_per_key), '{}'::text[])
        into v_per_key, v_full
        from (
            select m.concurrency_key as key, count(*) as held from pgqrs.messages as m
            where
                m.queue_id = p_queue_id and m.concurrency_key is not null and m.lease_token is not null
                and m.visible_at > p_now
            group by m.concurrency_key
        ) as h;
        for v_candidate in
            with recursive levels (priority) as (  -- the priorities present, as in pgqrs._ready_messages
                select max(m.priority) from pgqrs.messages as m where m.queue_id = p_queue_id
                union all
                select (
                    select max(m.priority) from pgqrs.messages as m
                    where m.queue_id = p_queue_id and m.priority < l.priority
                )
                from levels as l where l.priority is not null
            )
            select r.message_id, r.concurrency_key
            from levels as l
            cross join lateral (
                select m.message_id, m.concurrency_key
                from pgqrs.messages as m
                where
                    m.queue_id = p_queue_id and m.priority = l.priority and m.visible_at <= p_now
                    and (m.concurrency_key is null or m.concurrency_key <> all(v_full))
                    and (m.version = p_version or m.version is null and (p_version is null or m.read_count = 0))
                order by m.visible_at, m.message_id
                limit v_room * 10 + 100
                for update skip locked
            ) as r
            limit v_room * 10 + 100
        loop
            if v_candidate.concurrency_key is not null then
                v_key_load := coalesce((v_per_key ->> v_candidate.concurrency_key)::integer, 0);
                continue when v_key_load >= p_max_per_key;
                v_per_key := v_per_key || jsonb_build_object(v_candidate.concurrency_key, v_key_load + 1);
            end if;
            v_picked := v_picked || v_candidate.message_id;
            exit when cardinality(v_picked) >= v_room;
        end loop;
    end if;
    if v_period is not null then
        insert into pgqrs.rate_limit_log (queue_id, delivered_at) select p_queue_id, p_now from unnest(v_picked);
    end if;
    return v_picked;
end
$$;

-- Whether a queue's workflow limits concurrency: a slot that frees must wake its listeners then. PL/pgSQL (its
-- plan cached per session), not LANGUAGE sql: it runs on every run's end (pgqrs._archive_message).
create or replace function pgqrs._limits_concurrency(p_queue_id bigint)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    return exists (
        select from pgqrs.queues as q join pgqrs.workflows as w using (workflow_id)
        where q.queue_id = p_queue_id and (w.max_concurrency is not null or w.max_concurrency_per_key is not null)
    );
end
$$;
