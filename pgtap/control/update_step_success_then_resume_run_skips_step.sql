-- The guide's webhook: update_step records SUCCESS while paused, resume_run requeues, the step is then SKIPPED.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select pgqrs_tests.paused_run('approval', '1 day') as run_id;
set local "pgqrs.now" = '2030-01-01 00:10:00+00';

select results_eq(
    $$select status, value
          from pgqrs.update_step((select run_id from t_run), 'approval', 'SUCCESS', '{"approved": true}')$$,
    $$values ('SUCCESS'::text, '{"approved": true}'::jsonb)$$,
    'update_step records the result and returns the step row'
);
select is(
    (select status from pgqrs.runs where run_id = (select run_id from t_run)), 'PAUSED', 'the run is still PAUSED'
);
select is(pgqrs.resume_run((select run_id from t_run)), 'QUEUED', 'resume_run returns QUEUED');
select results_eq(
    $$select r.status, m.visible_at from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id
      where r.run_id = (select run_id from t_run)$$,
    $$values ('QUEUED'::text, '2030-01-01 00:10:00+00'::timestamptz)$$,
    'the run is QUEUED and visible now'
);
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select run_id from t_l2), (select run_id from t_run), 'the next dequeue delivers it');
select results_eq(
    $$select a.status, a.value from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 'approval', l.lease_token) as a$$,
    $$values ('SKIPPED'::text, '{"approved": true}'::jsonb)$$,
    'acquire_step answers SKIPPED with the update''s value'
);

select * from finish();
rollback;
