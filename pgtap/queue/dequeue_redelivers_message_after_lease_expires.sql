-- A leased message is not handed out again until its lease expires; then it is, with a new token.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();

select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'not returned again while leased'
);
set local "pgqrs.now" = '2030-01-01 00:00:29.999+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'not returned just before the lease expires'
);
set local "pgqrs.now" = '2030-01-01 00:00:30+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');

select is((select run_id from t_lease2), (select run_id from t_lease1), 'returned again once the lease expired');
select isnt((select lease_token from t_lease2), (select lease_token from t_lease1), 'with a new lease token');
select is((select attempt from t_lease2), 2, 'attempt counts the second delivery');
select results_eq(
    $$select r.status, r.attempt, m.read_count, m.visible_at from pgqrs.runs as r
      join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = (select run_id from t_lease1)$$,
    $$values ('RUNNING'::text, 2, 2, '2030-01-01 00:01:00+00'::timestamptz)$$,
    'run RUNNING, delivered twice, new lease until now + visibility'
);

select * from finish();
rollback;
