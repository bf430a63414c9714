-- apply_retention purges each workflow with a retention at most once a minute, whoever calls it; a workflow
-- without one keeps everything; create_workflow p_retention sets it, set_workflow_retention(NULL) removes it.
begin;
select plan(6);

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('keep');
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_a as select (pgqrs_tests.leased_run()).*;
select pgqrs.complete_run((select run_id from t_a), (select lease_token from t_a), '{}');
create temp table t_b as select (pgqrs_tests.leased_run('{"n": 2}')).*;
select pgqrs.complete_run((select run_id from t_b), (select lease_token from t_b), '{}');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'keep') as worker_id;
select pgqrs.trigger('keep', '{}');
create temp table t_k as select * from pgqrs.dequeue('keep', (select worker_id from t_kw));
select pgqrs.complete_run((select run_id from t_k), (select lease_token from t_k), '{}');

set local "pgqrs.now" = '2030-02-01 00:00:00+00';
select pgqrs.create_workflow('wf', p_retention => '7 days');
select is(
    (select keep_for from pgqrs.retention join pgqrs.workflows using (workflow_id) where name = 'wf'),
    '7 days'::interval,
    'create_workflow sets the retention'
);
update pgqrs.retention set applied_at = '2030-01-31 23:59:30+00';
select is(pgqrs.apply_retention(), 0::bigint, 'applied 30 s ago by another worker: nothing now');
set local "pgqrs.now" = '2030-02-01 00:00:31+00';
select is(pgqrs.apply_retention(), 2::bigint, 'a minute later: its old runs go');
select is(
    (select count(*)::integer from pgqrs.runs join pgqrs.workflows using (workflow_id) where name = 'keep'),
    1,
    'a workflow without a retention keeps its runs'
);
select pgqrs.set_workflow_retention('wf', null);
select is((select count(*)::integer from pgqrs.retention), 0, 'set_workflow_retention(NULL) removes it');
select is(pgqrs.apply_retention(), 0::bigint, 'and nothing is applied');

select * from finish();
rollback;
