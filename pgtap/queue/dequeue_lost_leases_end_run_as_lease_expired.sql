-- A run whose deliveries keep dying (the worker's lease expires, no step recorded) is not delivered forever:
-- after max_attempts lost leases in a row it ends ERROR (kind lease_expired) as a dead letter.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 3}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create temp table t_d1 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
set local "pgqrs.now" = '2030-01-01 00:00:30+00';
create temp table t_d2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select is((select failed_deliveries from pgqrs.messages), 1, 'the first lost lease is counted');
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_d3 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select is((select count(*) from t_d3), 1::bigint, 'delivered again after two lost leases');
select is((select failed_deliveries from pgqrs.messages), 2, 'the second lost lease is counted');

set local "pgqrs.now" = '2030-01-01 00:01:30+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds')), 0::bigint,
    'the third lost lease ends the run instead of delivering it'
);
select results_eq(
    $$select status, error ->> 'kind', (error ->> 'deliveries')::int from pgqrs.runs$$,
    $$values ('ERROR'::text, 'lease_expired'::text, 3)$$,
    'run ERROR, kind lease_expired, with the count'
);
select is(
    (select outcome from pgqrs.messages_archive where message_id = (select run_id from t_run)), 'DEAD_LETTER',
    'its message is a dead letter'
);
select is((select count(*) from pgqrs.dead_letters), 1::bigint, 'listed in dead_letters');

select * from finish();
rollback;
