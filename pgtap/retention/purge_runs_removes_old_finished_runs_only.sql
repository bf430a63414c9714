-- purge_runs removes finished runs older than the cut with everything that is theirs, oldest first, up to its
-- limit; it keeps unfinished runs, newer ones and other statuses, and a dry run counts without removing.
begin;
select plan(9);

select pgqrs_tests.setup_workflow();
-- three runs finished on 2030-01-01 (SUCCESS, SUCCESS, ERROR), one on 2030-01-20, one still queued
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_old as select (pgqrs_tests.leased_run()).*;
select pgqrs.complete_step((select run_id from t_old), 's', (select lease_token from t_old), '1');
select pgqrs.complete_run((select run_id from t_old), (select lease_token from t_old), '{}');
create temp table t_old2 as select (pgqrs_tests.leased_run('{"n": 2}')).*;
select pgqrs.complete_run((select run_id from t_old2), (select lease_token from t_old2), '{}');
create temp table t_err as select (pgqrs_tests.leased_run('{"n": 3}')).*;
select pgqrs.fail_run((select run_id from t_err), (select lease_token from t_err), '{"e": 1}');
set local "pgqrs.now" = '2030-01-20 00:00:00+00';
create temp table t_new as select (pgqrs_tests.leased_run('{"n": 4}')).*;
select pgqrs.complete_run((select run_id from t_new), (select lease_token from t_new), '{}');
create temp table t_queued as select run_id from pgqrs.trigger('wf', '{"n": 5}');

set local "pgqrs.now" = '2030-01-21 00:00:00+00';
select is(pgqrs.purge_runs('7 days', p_dry_run => true), 3::bigint, 'a dry run counts the three old ones');
select is((select count(*)::integer from pgqrs.runs), 5, '... and removes nothing');
select is(pgqrs.purge_runs('7 days', array['ERROR']), 1::bigint, 'one status: only the failed run');
select is(pgqrs.purge_runs('7 days', p_limit => 1), 1::bigint, 'a limit: one run per call');
select is(
    (select run_id from pgqrs.runs where run_id in (
        select run_id from t_old
        union all
        select run_id from t_old2
    )),
    (select run_id from t_old2),
    'the oldest went first'
);
select is(pgqrs.purge_runs('7 days'), 1::bigint, 'then the rest');
select is(pgqrs.purge_runs('7 days'), 0::bigint, 'until none is left');
select results_eq(
    'select run_id from pgqrs.runs order by run_id',
    'select run_id from t_new union all select run_id from t_queued',
    'the newer run and the unfinished one are kept'
);
select is(
    (select count(*)::integer from pgqrs.steps) + (select count(*)::integer from pgqrs.messages_archive),
    1,
    'their steps and archived messages went with them (only the newer run''s archived message is left)'
);

select * from finish();
rollback;
