-- A non-transient failure ends the run at once, whatever attempts are left.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 10}') as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();

select results_eq(
    $$select f.* from t_lease as l,
      lateral pgqrs.fail_step(l.run_id, 's', l.lease_token, '{"msg": "bad request"}', p_transient => false) as f$$,
    $$values ('ERROR'::text, 1, null::timestamptz)$$,
    'returns ERROR after attempt 1'
);
select results_eq(
    $$select r.status, a.outcome from pgqrs.runs as r join pgqrs.messages_archive as a on a.message_id = r.run_id
      where r.run_id = (select run_id from t_lease)$$,
    $$values ('ERROR'::text, 'DEAD_LETTER'::text)$$,
    'run ERROR, message dead-lettered'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker))), 0::bigint,
    'nothing left to deliver'
);

select * from finish();
rollback;
