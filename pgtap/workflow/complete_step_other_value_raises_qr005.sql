-- A recorded success is never overwritten: complete_step with another value raises QR005.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_worker as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
create temp table t_done as select pgqrs.complete_step(run_id, 's', lease_token, '{"v": 1}') as ok from t_lease;

select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 's', %L, '{"v": 2}')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR005', null, 'another value raises QR005'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 's', %L, null)$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    'QR005', null, 'NULL (stored as JSON null) is another value too'
);
select is(
    (select value from pgqrs.steps where run_id = (select run_id from t_lease)), '{"v": 1}'::jsonb,
    'the first value stays'
);

select * from finish();
rollback;
