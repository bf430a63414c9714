-- Priorities: higher first, FIFO within one priority; a delayed run of a high priority stands in front of no
-- one; a retry keeps its priority.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select t.run_id
from (values (1, 0), (2, 5), (3, 0), (4, 5), (5, -3), (6, 100)) as p (n, priority),
    lateral pgqrs.trigger(
        'wf', jsonb_build_object('n', p.n), p_priority => p.priority,
        p_delay => case when p.n = 6 then interval '1 hour' end
    ) as t;
create temp table t_order (pos serial, n int, run_id bigint, lease_token uuid);
do $$
begin
    for i in 1..6 loop
        insert into t_order (n, run_id, lease_token)
        select (d.input ->> 'n')::int, d.run_id, d.lease_token
        from pgqrs.dequeue('wf', (select worker_id from t_worker)) as d;
    end loop;
end
$$;
select results_eq(
    $$select n from t_order order by pos$$,
    $$values (2), (4), (1), (3), (5)$$,
    'one at a time: priority 5 (FIFO), then 0 (FIFO), then -3; the delayed priority 100 not yet'
);

-- run 2 fails and retries a minute later; run 7 (priority 0) is triggered before that
select f.run_status from t_order as o,
    lateral pgqrs.fail_step(o.run_id, 's', o.lease_token, '{}', true, '1 minute') as f
where o.n = 2;
select pgqrs.complete_run(o.run_id, o.lease_token, '1') from t_order as o where o.n <> 2;
select is(
    (select priority from pgqrs.messages where message_id = (select run_id from t_order where n = 2)),
    5::smallint, 'a retry keeps its priority'
);
set local "pgqrs.now" = '2030-01-01 00:00:30+00';
select pgqrs.trigger('wf', '{"n": 7}');
set local "pgqrs.now" = '2030-01-01 00:02:00+00';
select is(
    (select (d.input ->> 'n')::int from pgqrs.dequeue('wf', (select worker_id from t_worker)) as d),
    2, 'the retry (priority 5) comes before the older run 7 (priority 0)'
);
select is(
    (select (d.input ->> 'n')::int from pgqrs.dequeue('wf', (select worker_id from t_worker)) as d),
    7, 'then run 7'
);

select * from finish();
rollback;
