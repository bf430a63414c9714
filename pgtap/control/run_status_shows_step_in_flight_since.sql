-- The step a running run is in, and since when: the heartbeat reports a step in flight before it is recorded.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_d as select * from pgqrs_tests.leased_run();
select pgqrs.complete_step((select run_id from t_d), 'first', (select lease_token from t_d), '1');
set local "pgqrs.now" = '2030-01-01 00:00:12+00';
select pgqrs.heartbeat(
    (select worker_id from t_worker), array[(select lease_token from t_d)],
    jsonb_build_array(jsonb_build_object(
        'lease_token', (select lease_token from t_d), 'step_id', 'long',
        'running_for', 11.5
    ))
);

select results_eq(
    $$select current_step, current_step_status, current_step_since from pgqrs.run_status((select run_id from t_d))$$,
    $$values ('long'::text, 'RUNNING'::text, '2030-01-01 00:00:00.5+00'::timestamptz)$$,
    'run_status: the step in flight, RUNNING since it started'
);
select results_eq(
    $$select current_step, current_step_status, current_step_since from pgqrs.run_overview$$,
    $$values ('long'::text, 'RUNNING'::text, '2030-01-01 00:00:00.5+00'::timestamptz)$$,
    'run_overview: the same'
);
set local "pgqrs.now" = '2030-01-01 00:00:15+00';
select pgqrs.complete_step((select run_id from t_d), 'long', (select lease_token from t_d), '2', '14.5 seconds');
select results_eq(
    $$select r.current_step, r.current_step_status, s.attempt, s.started_at
      from pgqrs.run_status((select run_id from t_d)) as r
      join pgqrs.steps as s on s.step_id = r.current_step$$,
    $$values ('long'::text, 'SUCCESS'::text, 1, '2030-01-01 00:00:00.5+00'::timestamptz)$$,
    'once recorded, the step is current as recorded (one attempt; reporting it counted none)'
);

select * from finish();
rollback;
