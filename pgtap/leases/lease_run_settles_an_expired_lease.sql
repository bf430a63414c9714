-- lease_run of a RUNNING run whose lease expired takes it over as dequeue does: the lost delivery is settled
-- (the step in flight failed as lease_expired), a new token and a higher fencing token; the old token is fenced.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_old as select * from pgqrs_tests.run_at_step('b', array['a']);
set local "pgqrs.now" = '2030-01-01 00:00:31+00';
create temp table t_new as select * from pgqrs.lease_run((select run_id from t_old));

select is((select fencing_token from t_new), 2::bigint, 'the second delivery: fencing token 2');
select isnt((select lease_token from t_new), (select lease_token from t_old), 'a new token');
select is((select steps -> 'a' ->> 'status' from t_new), 'SUCCESS', 'the journal has the recorded step');
select is(
    (select s.error ->> 'kind' from pgqrs.steps as s where s.run_id = (select run_id from t_old) and s.step_id = 'b'),
    'lease_expired', 'the step in flight at the loss failed as lease_expired'
);
select throws_ok(
    format($$select pgqrs.complete_run(%s, %L, '1')$$, (select run_id from t_old), (select lease_token from t_old)),
    'QR004', null, 'the old lease is fenced'
);

select * from finish();
rollback;
