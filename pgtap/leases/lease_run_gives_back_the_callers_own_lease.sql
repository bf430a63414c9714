-- lease_run with the token of the lease the caller holds gives that lease back unchanged (starting a handle
-- twice, or a dequeued run's handle): same token, same fencing token, same visibility, attempt not counted.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
set local "pgqrs.now" = '2030-01-01 00:00:05+00';
create temp table t_again as
select * from pgqrs.lease_run((select run_id from t_lease), p_lease_token => (select lease_token from t_lease));

select results_eq(
    $$select lease_token, fencing_token, attempt from t_again$$,
    $$select lease_token, fencing_token, attempt from t_lease$$,
    'the same lease, fencing token and attempt'
);
select is(
    (select m.visible_at from pgqrs.messages as m where m.message_id = (select run_id from t_lease)),
    '2030-01-01 00:00:30+00'::timestamptz, 'its expiry unchanged'
);
select throws_ok(
    format($$select * from pgqrs.lease_run(%s, p_lease_token => gen_random_uuid())$$, (select run_id from t_lease)),
    'QR003', null, 'another token: refused while the lease is held'
);

select * from finish();
rollback;
