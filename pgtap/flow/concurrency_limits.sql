-- max_concurrency: a dequeue leases no more than the free slots; a finished run or an expired lease frees one.
-- max_concurrency_per_key: a key at its limit is passed by, the other keys are delivered (no head-of-line
-- blocking); queue_stats names the limit that holds runs back.
begin;
select plan(9);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.set_workflow_limits('wf', p_max_concurrency => 2);
select pgqrs.trigger_batch('wf', '[{}, {}, {}, {}, {}]');
create temp table t_first as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 5);
select is((select count(*) from t_first), 2::bigint, 'a batch of 5 gets the 2 free slots');
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 0::bigint, 'then none'
);
select results_eq(
    $$select ready, leased, limited, limited_by from pgqrs.queue_stats where queue = 'wf'$$,
    $$values (3::bigint, 2::bigint, 3::bigint, 'max_concurrency'::text)$$,
    'queue_stats: 3 ready runs held back by max_concurrency'
);
select pgqrs.complete_run(run_id, lease_token, '1') from t_first order by run_id limit 1;
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 1::bigint,
    'a finished run frees its slot'
);
set local "pgqrs.now" = '2030-01-01 00:01:00+00';  -- every lease (30 s) has expired
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 5)), 2::bigint,
    'expired leases free their slots'
);

-- per key: a, a, a queued first, then b and c
select pgqrs.create_workflow('keyed', p_max_concurrency_per_key => 1);
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'keyed') as worker_id;
select t.run_id from (values (1, 'a'), (2, 'a'), (3, 'a'), (4, 'b'), (5, 'c')) as k (n, key),
    lateral pgqrs.trigger('keyed', jsonb_build_object('n', k.n), p_concurrency_key => k.key) as t;
select results_eq(
    $$select (d.input ->> 'n')::int from pgqrs.dequeue('keyed', (select worker_id from t_kw), 5) as d
      order by d.run_id$$,
    $$values (1), (4), (5)$$,
    'one run of a, and b and c past a''s backlog'
);
select results_eq(
    $$select limited, limited_by from pgqrs.queue_stats where queue = 'keyed'$$,
    $$values (2::bigint, 'max_concurrency_per_key'::text)$$,
    'queue_stats: 2 runs of a held back by max_concurrency_per_key'
);
select is(
    (select count(*) from pgqrs.dequeue('keyed', (select worker_id from t_kw), 5)), 0::bigint,
    'a second dequeue gets nothing: a is at its limit'
);
-- a limit of 3 with one run of a leased: two more of a in one batch (the leases and the batch's own picks
-- counted together; the first version counted its leases twice and gave one)
select pgqrs.set_workflow_limits('keyed', p_max_concurrency_per_key => 3);
select pgqrs.trigger('keyed', '{"n": 6}', p_concurrency_key => 'a');
select is(
    (select count(*) from pgqrs.dequeue('keyed', (select worker_id from t_kw), 5)), 2::bigint,
    'a limit of 3 with one leased: a batch gets 2 more'
);

select * from finish();
rollback;
