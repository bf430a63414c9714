-- A run keeps the trace context its trigger was given; dequeue hands it out; a child run gets its parent's,
-- or the one start_child is given; trigger_batch gives each run the batch's.
begin;
select plan(6);

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.create_workflow('kid');
create temp table t_run as
select * from pgqrs.trigger('wf', '{}', p_trace_context => '{"traceparent": "00-aa-bb-01", "tracestate": "x=1"}');
select is(
    (select trace_context from pgqrs.runs where run_id = (select run_id from t_run)),
    '{"traceparent": "00-aa-bb-01", "tracestate": "x=1"}'::jsonb,
    'trigger stores the trace context'
);
create temp table t_leased as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select trace_context ->> 'traceparent' from t_leased), '00-aa-bb-01', 'dequeue hands it out');
-- (each call in a statement of its own: a statement does not see the rows its own function calls insert)
create temp table t_c1 as
select pgqrs.start_child((select run_id from t_leased), 'c1', (select lease_token from t_leased), 'kid') as run_id;
select is(
    (select r.trace_context ->> 'traceparent' from pgqrs.runs as r join t_c1 using (run_id)),
    '00-aa-bb-01',
    'a child run gets its parent''s'
);
create temp table t_c2 as
select pgqrs.start_child(
    (select run_id from t_leased),
    'c2',
    (select lease_token from t_leased),
    'kid',
    '{}',
    '{"traceparent": "00-aa-cc-01"}'
) as run_id;
select is(
    (select r.trace_context ->> 'traceparent' from pgqrs.runs as r join t_c2 using (run_id)),
    '00-aa-cc-01',
    'or the one start_child is given'
);
create temp table t_batch as
select b.run_id from pgqrs.trigger_batch('kid', '[{}, {}]', p_trace_context => '{"traceparent": "t"}') as b;
select is(
    (
        select count(*)::integer from pgqrs.runs as r join t_batch using (run_id)
        where r.trace_context = '{"traceparent": "t"}'
    ),
    2,
    'trigger_batch gives each run the batch''s'
);
create temp table t_plain as select run_id from pgqrs.trigger('kid', '{"n": 1}');
select is(
    (select r.trace_context from pgqrs.runs as r join t_plain using (run_id)), null, 'without one: NULL'
);

select * from finish();
rollback;
