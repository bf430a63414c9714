-- After the pause timeout the run is delivered again; the paused step's body runs again (and may pause again).
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select pgqrs_tests.paused_run('approval', '1 hour') as run_id;

set local "pgqrs.now" = '2030-01-01 01:00:00+00';
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

select is((select run_id from t_l2), (select run_id from t_run), 'delivered again at the timeout');
select is((select status from pgqrs.runs where run_id = (select run_id from t_run)), 'RUNNING', 'the run is RUNNING');
select is((select steps -> 'approval' ->> 'status' from t_l2), 'PAUSED', 'the journal shows the step PAUSED');
select results_eq(
    $$select a.status, a.attempt from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 'approval', l.lease_token) as a$$,
    $$values ('EXECUTE'::text, 1)$$,
    'acquire_step of the paused step says EXECUTE (a pause is not a failed attempt)'
);
select results_eq(
    $$select p.* from t_l2 as l, lateral pgqrs.pause_step(l.run_id, 'approval', l.lease_token, '1 hour') as p$$,
    $$values ('PAUSED'::text, null::jsonb)$$,
    'it can pause again'
);

select * from finish();
rollback;
