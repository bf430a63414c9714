-- Each dequeued row carries the run's recorded steps, so a worker can replay them without a round trip each.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();
create temp table t_done as
select pgqrs.complete_step(run_id, 'fetch', lease_token, '{"rows": 42}') as ok from t_lease1;
create temp table t_fail as
select f.* from t_lease1 as l,
    lateral pgqrs.fail_step(l.run_id, 'upload', l.lease_token, '{"msg": "503"}', true, '1 minute') as f;

select is((select steps from t_lease1), '{}'::jsonb, 'the first delivery has an empty journal');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');

select is(
    (select steps -> 'fetch' from t_lease2),
    '{"status": "SUCCESS", "value": {"rows": 42}, "attempt": 1, "retry_at": null}'::jsonb,
    'the redelivery carries the succeeded step with its value'
);
select is(
    (select steps -> 'upload' from t_lease2),
    '{"status": "ERROR", "value": null, "attempt": 1, "retry_at": "2030-01-01T00:01:00+00:00"}'::jsonb,
    'and the failed step with its attempt and retry time'
);

select * from finish();
rollback;
