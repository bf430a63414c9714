-- complete_run archives the message; the seeds' archive(msg.id) afterwards is a no-op, returning true to the
-- worker that held it (pgqrs 0.15's manual loop) and false to anyone else.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_done as select pgqrs.complete_run(run_id, lease_token, '"ok"') as status from t_lease;

select is(
    pgqrs.archive((select message_id from t_lease), (select worker_id from t_worker)), true,
    'archive after complete_run, by the worker that held it: true'
);
select is(
    pgqrs.archive((select message_id from t_lease), (select worker_id from t_worker)), true,
    'again: the same answer, nothing changes'
);
select is(pgqrs.archive((select message_id from t_lease)), false, 'without a worker: false');
select is(
    pgqrs.archive((select message_id from t_lease), pgqrs.register_worker('w2', 'host', null, 'wf')), false,
    'by another worker: false'
);
select is(
    (select count(*) from pgqrs.messages_archive as a where a.message_id = (select message_id from t_lease)), 1::bigint,
    'one archive row'
);
select is(
    (select status from pgqrs.run_status((select message_id from t_lease))), 'SUCCESS',
    'the run stays readable by the message id'
);

select * from finish();
rollback;
