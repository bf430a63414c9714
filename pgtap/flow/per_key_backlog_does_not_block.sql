-- max_concurrency_per_key: a key at its limit whose backlog is deeper than the candidates a dequeue looks at
-- (10 x the batch + 100) does not hide the runs of other keys queued behind it: no head-of-line blocking.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs.create_workflow('keyed', p_max_concurrency_per_key => 1);
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'keyed') as worker_id;
-- 500 runs of key a, then one of key b
select count(t.run_id) from generate_series(1, 500) as i,
    lateral pgqrs.trigger('keyed', jsonb_build_object('n', i), p_concurrency_key => 'a') as t;
select t.run_id from pgqrs.trigger('keyed', '{"n": 0}', p_concurrency_key => 'b') as t;
select is(
    (select d.input ->> 'n' from pgqrs.dequeue('keyed', (select worker_id from t_kw), 1) as d), '1',
    'the oldest run of a first: a is at its limit now'
);
select is(
    (select d.input ->> 'n' from pgqrs.dequeue('keyed', (select worker_id from t_kw), 1) as d), '0',
    'the run of b, past the 499 waiting runs of a'
);
select is(
    (select count(*) from pgqrs.dequeue('keyed', (select worker_id from t_kw), 5)), 0::bigint,
    'then nothing: only runs of a are left'
);

select * from finish();
rollback;
