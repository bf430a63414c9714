-- dequeue leases at most p_batch_size messages per call.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{}, {}, {}, {}, {}]');

select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 2, '1 hour')), 2::bigint,
    'batch 2 leases 2'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '1 hour')), 1::bigint,
    'batch 1 leases 1'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 50, '1 hour')), 2::bigint,
    'batch 50 leases the 2 left'
);
select is(
    (select count(*) from pgqrs.messages where lease_token is not null), 5::bigint,
    'all 5 leased, each once'
);

select * from finish();
rollback;
