-- dequeue batch size must be 1-1000: 0, -1, 10^9 and NULL are 22023 and nothing is leased.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, 0)$$, (select worker_id from t_worker)), '22023', null, '0'
);
select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, -1)$$, (select worker_id from t_worker)), '22023', null, '-1'
);
select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, 1000000000)$$, (select worker_id from t_worker)),
    '22023', null, '10^9'
);
select throws_ok(
    format($$select * from pgqrs.dequeue('wf', %s, null)$$, (select worker_id from t_worker)), '22023', null, 'NULL'
);
select results_eq(
    $$select r.status, m.lease_token from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id$$,
    $$values ('QUEUED'::text, null::uuid)$$,
    'nothing leased'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1000)), 1::bigint, '1000 is allowed'
);

select * from finish();
rollback;
