-- A finished run cannot be cancelled (nor an unknown one); the run is unchanged.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_d as select * from pgqrs_tests.leased_run();
select pgqrs.complete_run((select run_id from t_d), (select lease_token from t_d), '"done"');

select throws_ok(
    format('select pgqrs.cancel_run(%s)', (select run_id from t_d)), 'QR003', null,
    'a SUCCESS run: QR003'
);
select is((select status from pgqrs.runs), 'SUCCESS', 'it stays SUCCESS');
select throws_ok('select pgqrs.cancel_run(-1)', 'QR002', null, 'an unknown run: QR002');
create temp table t_other as select * from pgqrs.trigger('wf', '{}');
select pgqrs.cancel_run((select run_id from t_other));
select throws_ok(
    format('select pgqrs.cancel_run(%s)', (select run_id from t_other)), 'QR003', null,
    'cancelling twice: QR003'
);

select * from finish();
rollback;
