-- sleep_step: step and run WAITING, lease released, message visible at the wake-up; listed in waiting_runs;
-- delivered at the wake-up (RUNNING), the replay returns SUCCESS with the recorded time and the wait row is gone.
begin;
select plan(12);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.sleep_step(l.run_id, 'nap', l.lease_token, '2030-01-01 01:00:00+00') as p$$,
    $$values ('WAITING'::text, '2030-01-01 01:00:00+00'::timestamptz)$$,
    'sleep_step returns WAITING with the wake-up time'
);
select results_eq(
    $$select status, kind, value from pgqrs.steps where run_id = (select run_id from t_lease)$$,
    $$values ('WAITING'::text, 'sleep'::text, '"2030-01-01T01:00:00+00:00"'::jsonb)$$,
    'the step is WAITING, kind sleep, the wake-up time its value'
);
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'WAITING', 'the run is WAITING');
select results_eq(
    $$select visible_at, lease_token from pgqrs.messages where message_id = (select run_id from t_lease)$$,
    $$values ('2030-01-01 01:00:00+00'::timestamptz, null::uuid)$$,
    'the lease is released; the message is visible at the wake-up'
);
select results_eq(
    $$select workflow, kind, key, until, since, step_id from pgqrs.waiting_runs
      where run_id = (select run_id from t_lease)$$,
    $$values ('wf'::text, 'sleep'::text, null::text, '2030-01-01 01:00:00+00'::timestamptz,
              '2030-01-01 00:00:00+00'::timestamptz, 'nap'::text)$$,
    'listed in pgqrs.waiting_runs'
);
select results_eq(
    $$select status, current_step, current_step_status from pgqrs.run_status((select run_id from t_lease))$$,
    $$values ('WAITING'::text, 'nap'::text, 'WAITING'::text)$$,
    'run_status shows the run WAITING at its sleep'
);
select is((select waiting from pgqrs.queue_stats where queue = 'wf'), 1::bigint, 'queue_stats counts it waiting');
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 'x', %L)$$, (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR004', null, 'the old token is refused'
);
set local "pgqrs.now" = '2030-01-01 00:59:59+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker))), 0::bigint,
    'not delivered before the wake-up'
);
set local "pgqrs.now" = '2030-01-01 01:00:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select a.run_id, r.status, a.steps -> 'nap' ->> 'status' from t_again as a join pgqrs.runs as r using (run_id)$$,
    $$select run_id, 'RUNNING'::text, 'WAITING'::text from t_lease$$,
    'delivered at the wake-up: RUNNING, the journal has the sleep'
);
-- the replay asks for a later wake-up (now + 1 hour again): the recorded one wins, and it is due
select results_eq(
    $$select p.* from t_again as a,
      lateral pgqrs.sleep_step(a.run_id, 'nap', a.lease_token, '2030-01-01 02:00:00+00') as p$$,
    $$values ('SUCCESS'::text, '2030-01-01 01:00:00+00'::timestamptz)$$,
    'the replay goes on: SUCCESS with the recorded time'
);
select results_eq(
    $$select s.status, (select count(*) from pgqrs.waits as w where w.run_id = s.run_id)
      from pgqrs.steps as s where s.run_id = (select run_id from t_lease)$$,
    $$values ('SUCCESS'::text, 0::bigint)$$,
    'the step is SUCCESS and the wait row is gone'
);

select * from finish();
rollback;
