-- The dequeue index exists and matches the dequeue order within one priority (queue_id =, priority =, then
-- visible_at, message_id): no sort; the priorities present are found by probes of the same index.
begin;
select plan(5);

select has_index(
    'pgqrs', 'messages', 'messages_ready_idx', array['queue_id', 'priority', 'visible_at', 'message_id'],
    'messages_ready_idx on (queue_id, priority desc, visible_at, message_id)'
);
select has_index('pgqrs', 'messages', 'messages_lease_token_idx', array['lease_token'], 'leases are found by token');
select ok(pg_get_indexdef('pgqrs.messages_lease_token_idx'::regclass) ~ 'UNIQUE', 'a lease token is unique');

-- The plan of the select of pgqrs._ready_messages, with scans that ignore the order priced out:
-- the index then delivers rows in order, so the plan needs no Sort node. (bench/dequeue.py shows it at 1M rows.)
create function pg_temp.dequeue_plan()
returns text
language plpgsql
as $$
declare
    v_line text;
    v_plan text := '';
begin
    for v_line in
        explain (costs off)
        with recursive levels (priority) as (
            select max(m.priority) from pgqrs.messages as m where m.queue_id = 1
            union all
            select (select max(m.priority) from pgqrs.messages as m where m.queue_id = 1 and m.priority < l.priority)
            from levels as l where l.priority is not null
        )
        select r.message_id
        from levels as l
        cross join lateral (
            select m.message_id from pgqrs.messages as m
            where m.queue_id = 1 and m.priority = l.priority and m.visible_at <= pgqrs.now()
            order by m.visible_at, m.message_id
            limit 50
            for update skip locked
        ) as r
        limit 50
    loop
        v_plan := v_plan || v_line || E'\n';
    end loop;
    return v_plan;
end
$$;
set local enable_seqscan = off;
set local enable_bitmapscan = off;
select matches(pg_temp.dequeue_plan(), 'Index Scan using messages_ready_idx', 'the dequeue select scans the index');
select doesnt_match(pg_temp.dequeue_plan(), 'Sort', 'and sorts nothing');

select * from finish();
rollback;
