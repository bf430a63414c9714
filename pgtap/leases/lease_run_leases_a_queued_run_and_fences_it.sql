-- lease_run leases the run it is given (a QUEUED run, due or not) as dequeue would: RUNNING, a new token, the
-- fencing token and attempt counted, the journal; the lease fences every write like dequeue's.
begin;
select plan(9);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select t.run_id from pgqrs.trigger('wf', '[1, 2]', p_delay => '1 hour') as t;
create temp table t_lease as
select * from pgqrs.lease_run((select run_id from t_run), (select worker_id from t_worker), '10 seconds');

select is((select run_id from t_lease), (select run_id from t_run), 'the run asked for');
select is((select message_id from t_lease), (select run_id from t_run), 'its message id is its run id');
select is((select input from t_lease), '[1, 2]'::jsonb, 'with its input (any JSON value)');
select is((select fencing_token from t_lease), 1::bigint, 'first delivery: fencing token 1');
select is((select steps from t_lease), '{}'::jsonb, 'an empty journal');
select results_eq(
    $$select r.status, r.attempt, m.visible_at, m.worker_id from pgqrs.runs as r
      join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = (select run_id from t_run)$$,
    $$values ('RUNNING'::text, 1, '2030-01-01 00:00:10+00'::timestamptz, (select worker_id from t_worker))$$,
    'RUNNING, leased for the visibility asked for, to the worker given, though its delay had not passed'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 10)), 0::bigint,
    'dequeue does not hand it out while leased'
);
select is(
    (select status from pgqrs.acquire_step((select run_id from t_run), 'a', (select lease_token from t_lease))),
    'EXECUTE', 'the lease carries the step protocol'
);
set local "pgqrs.now" = '2030-01-01 00:00:10+00';
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 'a', %L, '1')$$, (select run_id from t_run), (select lease_token from t_lease)
    ),
    'QR004', null, 'fenced: a write after the lease expired raises QR004'
);

select * from finish();
rollback;
