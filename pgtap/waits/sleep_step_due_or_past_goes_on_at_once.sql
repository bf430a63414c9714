-- sleep_step with a time that has come (now or past) records SUCCESS and keeps the lease; a second call with the
-- same step id returns the same; a recorded SUCCESS keeps returning SUCCESS.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.sleep_step(l.run_id, 'past', l.lease_token, '2029-12-31 00:00:00+00') as p$$,
    $$values ('SUCCESS'::text, '2029-12-31 00:00:00+00'::timestamptz)$$,
    'a past time: SUCCESS at once'
);
select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.sleep_step(l.run_id, 'past', l.lease_token, '2030-06-01 00:00:00+00') as p$$,
    $$values ('SUCCESS'::text, '2029-12-31 00:00:00+00'::timestamptz)$$,
    'again: the recorded outcome'
);
select results_eq(
    $$select r.status, m.lease_token = l.lease_token from t_lease as l
      join pgqrs.runs as r using (run_id) join pgqrs.messages as m on m.message_id = l.run_id$$,
    $$values ('RUNNING'::text, true)$$,
    'the run keeps running under its lease'
);
select is((select count(*) from pgqrs.waiting_runs), 0::bigint, 'nothing waits');

select * from finish();
rollback;
