-- release_worker_leases ends every lease of one worker now (another worker's stay): the runs are deliverable at
-- once, the next dequeue settles them as lost leases, the old tokens are fenced; an unknown worker is QR008.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_mine as select * from pgqrs_tests.leased_run('{"n": 1}');
select pgqrs.register_worker('w2', 'host', null, 'wf');
select pgqrs.trigger('wf', '{"n": 2}');
create temp table t_other as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id('w2'));

select is(pgqrs.release_worker_leases(pgqrs_tests.worker_id()), 1, 'one lease ended');
select results_eq(
    $$select m.message_id, m.visible_at = pgqrs.now() from pgqrs.messages as m order by m.message_id$$,
    $$values ((select run_id from t_mine), true), ((select run_id from t_other), false)$$,
    'its run is visible now; the other worker''s lease stays'
);
select throws_ok(
    format($$select pgqrs.complete_run(%s, %L, '1')$$, (select run_id from t_mine), (select lease_token from t_mine)),
    'QR004', null, 'the released lease is fenced'
);
create temp table t_again as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id('w2'));
select is((select run_id from t_again), (select run_id from t_mine), 'delivered again at once');
select is(pgqrs.release_worker_leases(pgqrs_tests.worker_id()), 0, 'nothing left to end');
select throws_ok('select pgqrs.release_worker_leases(-1)', 'QR008', null, 'an unknown worker');

select * from finish();
rollback;
