-- trigger creates a QUEUED run and its message in one call; message_id = run_id.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_run as select * from pgqrs.trigger('wf', '{"bucket": "b"}');

select is((select count(*) from t_run), 1::bigint, 'one row returned');
select is((select created from t_run), true, 'created is true');
select is((select message_id from t_run), (select run_id from t_run), 'message_id equals run_id');
select results_eq(
    $$select status, input, attempt from pgqrs.runs where run_id = (select run_id from t_run)$$,
    $$values ('QUEUED'::text, '{"bucket": "b"}'::jsonb, 0)$$,
    'the run is QUEUED with the input, never delivered'
);
select results_eq(
    $$select q.name, m.visible_at, m.lease_token from pgqrs.messages as m join pgqrs.queues as q using (queue_id)
      where m.message_id = (select message_id from t_run)$$,
    $$values ('wf'::text, '2030-01-01 00:00:00+00'::timestamptz, null::uuid)$$,
    'the message is in queue wf, visible now, not leased'
);
select is(
    (select status from pgqrs.run_status((select message_id from t_run))), 'QUEUED',
    'run_status accepts the message id'
);
select is(
    (select workflow from pgqrs.run_status((select run_id from t_run))), 'wf', 'run_status names the workflow'
);

select * from finish();
rollback;
