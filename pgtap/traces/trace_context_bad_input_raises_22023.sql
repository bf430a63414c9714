-- A trace context that is not an object of at most 8 string values in 2048 bytes is refused (22023) and
-- nothing is started.
begin;
select plan(5);

select pgqrs_tests.setup_workflow();
select throws_ok(
    $$select pgqrs.trigger('wf', '{}', p_trace_context => '"00-aa-bb-01"')$$, '22023', null, 'not an object'
);
select throws_ok(
    $$select pgqrs.trigger('wf', '{}', p_trace_context => '{"traceparent": 1}')$$, '22023', null, 'a value not a string'
);
select throws_ok(
    $$select pgqrs.trigger('wf', '{}', p_trace_context => jsonb_build_object('traceparent', repeat('x', 3000)))$$,
    '22023', null, 'over 2048 bytes'
);
select throws_ok(
    $$select pgqrs.trigger_batch('wf', '[{}]', p_trace_context => (
        select jsonb_object_agg('k' || i, 'v') from generate_series(1, 9) as i
    ))$$,
    '22023', null, 'nine fields'
);
select is((select count(*)::integer from pgqrs.runs), 0, 'nothing started');

select * from finish();
rollback;
