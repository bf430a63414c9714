-- cancel_run of a WAITING run: CANCELLED, its message archived, no longer listed in waiting_runs; an emit of its
-- key afterwards wakes nothing.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
select pgqrs.wait_event(run_id, 'e', lease_token, 'k') from t_lease;

select
    is(pgqrs.cancel_run((select run_id from t_lease), 'no longer needed'), 'CANCELLED', 'cancel_run returns CANCELLED');
select is(
    (select outcome from pgqrs.messages_archive where message_id = (select run_id from t_lease)), 'CANCELLED',
    'its message is archived as cancelled'
);
select is((select count(*) from pgqrs.waiting_runs), 0::bigint, 'no longer waiting');
select pgqrs.emit_event('k', '1');
select
    is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'CANCELLED', 'the emit leaves it');

select * from finish();
rollback;
