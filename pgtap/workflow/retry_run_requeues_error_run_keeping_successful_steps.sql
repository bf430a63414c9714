-- retry_run: an ERROR run goes back to QUEUED; succeeded steps are kept, failed ones start over.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_l1 as select * from pgqrs_tests.leased_run();
create temp table t_s1 as select pgqrs.complete_step(run_id, 'one', lease_token, '1') as ok from t_l1;
create temp table t_f2 as
select f.* from t_l1 as l, lateral pgqrs.fail_step(l.run_id, 'two', l.lease_token, '{}', p_transient => false) as f;
set local "pgqrs.now" = '2030-01-01 01:00:00+00';

select is(pgqrs.retry_run((select run_id from t_l1)), 'QUEUED', 'retry_run returns QUEUED');
select results_eq(
    $$select status, error, finished_at from pgqrs.runs where run_id = (select run_id from t_l1)$$,
    $$values ('QUEUED'::text, null::jsonb, null::timestamptz)$$,
    'the run is QUEUED again, error cleared'
);
select results_eq(
    $$select step_id, status from pgqrs.steps where run_id = (select run_id from t_l1)$$,
    $$values ('one'::text, 'SUCCESS'::text)$$,
    'the succeeded step is kept, the failed one reset'
);
select results_eq(
    $$select m.visible_at, (select count(*) from pgqrs.messages_archive as a where a.message_id = m.message_id)
      from pgqrs.messages as m where m.message_id = (select run_id from t_l1)$$,
    $$values ('2030-01-01 01:00:00+00'::timestamptz, 0::bigint)$$,
    'the message is live again, visible now, no longer archived'
);
create temp table t_l2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select steps ? 'one' and not steps ? 'two' from t_l2), true, 'the redelivery carries the kept step only');
select results_eq(
    $$select a.status, a.value from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 'one', l.lease_token) as a$$,
    $$values ('SKIPPED'::text, '1'::jsonb)$$,
    'the kept step is skipped'
);
select results_eq(
    $$select a.status, a.attempt from t_l2 as l, lateral pgqrs.acquire_step(l.run_id, 'two', l.lease_token) as a$$,
    $$values ('EXECUTE'::text, 1)$$,
    'the failed step executes again from attempt 1'
);

select * from finish();
rollback;
