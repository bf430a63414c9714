-- A worker id that is not registered raises QR008 (dequeue, heartbeat, stop_worker, archive); nothing is leased.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

select throws_ok($$select * from pgqrs.dequeue('wf', -1)$$, 'QR008', null, 'dequeue');
select throws_ok($$select * from pgqrs.dequeue('wf', null)$$, 'QR008', null, 'dequeue with a NULL worker');
select throws_ok($$select * from pgqrs.heartbeat(-1, '{}')$$, 'QR008', null, 'heartbeat');
select throws_ok($$select pgqrs.stop_worker(-1)$$, 'QR008', null, 'stop_worker');
select throws_ok(format('select pgqrs.archive(%s, -1)', (select run_id from t_run)), 'QR008', null, 'archive');
select is((select lease_token from pgqrs.messages), null::uuid, 'nothing leased');

select * from finish();
rollback;
