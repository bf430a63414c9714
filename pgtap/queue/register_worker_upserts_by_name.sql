-- register_worker is an upsert by name: a restarted worker takes its row back.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_first as select pgqrs.register_worker('w1', 'host-a', 8000, 'wf') as worker_id;
do $$ begin perform pgqrs.stop_worker((select worker_id from t_first)); end $$;
set local "pgqrs.now" = '2030-01-01 00:05:00+00';
create temp table t_second as select pgqrs.register_worker('w1', 'host-b', 8001, 'wf') as worker_id;

select is((select worker_id from t_second), (select worker_id from t_first), 'the same name returns the same id');
select is((select count(*) from pgqrs.workers where name = 'w1'), 1::bigint, 'one worker row');
select results_eq(
    $$select hostname, port, status, heartbeat_at from pgqrs.workers where name = 'w1'$$,
    $$values ('host-b'::text, 8001, 'ACTIVE'::text, '2030-01-01 00:05:00+00'::timestamptz)$$,
    'the row takes the new host and port, ACTIVE again, fresh heartbeat'
);
select isnt(
    pgqrs.register_worker('w2', 'host-a', 8000, 'wf'), (select worker_id from t_first),
    'another name is another worker'
);
select is(
    (select name from pgqrs.worker_status where worker_id = (select worker_id from t_first)), 'w1',
    'worker_status lists it'
);

select * from finish();
rollback;
