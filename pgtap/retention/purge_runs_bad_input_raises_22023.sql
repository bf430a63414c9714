-- A purge with a bad interval, status or limit raises 22023 and removes nothing; so does a bad retention.
begin;
select plan(10);

select pgqrs_tests.setup_workflow();
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_run as select (pgqrs_tests.leased_run()).*;
select pgqrs.complete_run((select run_id from t_run), (select lease_token from t_run), '{}');
set local "pgqrs.now" = '2031-01-01 00:00:00+00';

select throws_ok($$select pgqrs.purge_runs('0 seconds')$$, '22023', null, 'older_than 0');
select throws_ok($$select pgqrs.purge_runs('-1 day')$$, '22023', null, 'older_than negative');
select throws_ok($$select pgqrs.purge_runs('200 years')$$, '22023', null, 'older_than absurd');
select throws_ok($$select pgqrs.purge_runs(null)$$, '22023', null, 'older_than NULL');
select throws_ok($$select pgqrs.purge_runs('1 day', array['RUNNING'])$$, '22023', null, 'a running status');
select throws_ok($$select pgqrs.purge_runs('1 day', array['DONE'])$$, '22023', null, 'an unknown status');
select throws_ok($$select pgqrs.purge_runs('1 day', p_limit => 0)$$, '22023', null, 'limit 0');
select throws_ok($$select pgqrs.set_workflow_retention('wf', '0 days')$$, '22023', null, 'retention 0');
select throws_ok($$select pgqrs.set_workflow_retention('nope', '1 day')$$, 'QR001', null, 'unknown workflow');
select is((select count(*)::integer from pgqrs.runs), 1, 'nothing removed');

select * from finish();
rollback;
