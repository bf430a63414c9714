-- A well-formed name that is not defined raises QR001 wherever a workflow or queue is named; nothing is written.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;

select throws_ok($$select * from pgqrs.trigger('nope', '{}')$$, 'QR001', null, 'trigger');
select throws_ok($$select * from pgqrs.trigger_batch('nope', '[{}]')$$, 'QR001', null, 'trigger_batch');
select throws_ok(
    format($$select * from pgqrs.dequeue('nope', %s)$$, (select worker_id from t_worker)), 'QR001', null, 'dequeue'
);
select throws_ok($$select pgqrs.register_worker('w2', 'host', null, 'nope')$$, 'QR001', null, 'register_worker');
select throws_ok($$select pgqrs.queue_channel('nope')$$, 'QR001', null, 'queue_channel');
select results_eq(
    $$select (select count(*) from pgqrs.runs),
             (select count(*) from pgqrs.messages),
             (select count(*) from pgqrs.workers)$$,
    $$values (0::bigint, 0::bigint, 1::bigint)$$,
    'no run, message or worker written'
);

select * from finish();
rollback;
