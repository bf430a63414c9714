-- Negative or zero visibility, negative delay, both delay and run-at, a bad pause timeout: 22023, nothing written.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;

select throws_ok($$select * from pgqrs.trigger('wf', '{}', p_delay => '-1 second')$$, '22023', null, 'negative delay');
select throws_ok(
    $$select * from pgqrs.trigger('wf', '{}', p_delay => '1 minute', p_run_at => '2030-01-02 00:00+00')$$,
    '22023', null, 'delay and run-at together'
);
select is((select count(*) from pgqrs.runs), 0::bigint, 'no run written');
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, 1, '-30 seconds')$$, (select worker_id from t_worker)),
    '22023', null, 'negative visibility'
);
select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, 1, '0 seconds')$$, (select worker_id from t_worker)),
    '22023', null, 'zero visibility'
);
select is(
    (select lease_token from pgqrs.messages where message_id = (select run_id from t_run)), null::uuid, 'nothing leased'
);
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select throws_ok(
    format(
        $$select * from pgqrs.pause_step(%s, 's', %L, '-1 minute')$$,
        (select run_id from t_lease), (select lease_token from t_lease)
    ),
    '22023', null, 'negative pause timeout'
);
select is(
    (select status from pgqrs.runs where run_id = (select run_id from t_run)), 'RUNNING', 'the run is not paused'
);

select * from finish();
rollback;
