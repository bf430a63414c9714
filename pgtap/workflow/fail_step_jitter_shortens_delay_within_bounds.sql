-- Jitter takes up to `jitter` of the delay off, never more, never adds.
begin;
select plan(2);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select pgqrs_tests.setup_workflow('{"backoff": "fixed", "base_seconds": 100, "jitter": 0.5}') as worker_id;
create temp table t_runs as
select * from pgqrs.trigger_batch('wf', (select jsonb_agg('{}'::jsonb) from generate_series(1, 20)));
create temp table t_leases as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 20);
create temp table t_fails as
select f.* from t_leases as l, lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{}') as f;

select is(
    (
        select count(*) from t_fails
        where retry_at between '2030-01-01 00:00:50+00' and '2030-01-01 00:01:40+00'
    ),
    20::bigint, 'every retry_at is between now + 50 s and now + 100 s'
);
select cmp_ok(
    (select count(distinct retry_at) from t_fails), '>', 1::bigint, 'the delays are spread'
);

select * from finish();
rollback;
