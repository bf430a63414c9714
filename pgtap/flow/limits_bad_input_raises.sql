-- Bad limits and flow parameters: a clear 22023 (QR001 for an unknown workflow), nothing written.
begin;
select plan(9);

select pgqrs_tests.setup_workflow();
create temp table t_before as
select (select jsonb_agg(w) from pgqrs.workflows as w) as wfs, (select count(*) from pgqrs.runs) as runs;

select throws_ok(
    $$select pgqrs.create_workflow('x', p_max_concurrency => 0)$$, '22023',
    'max_concurrency must be 1-1000000, got 0', 'a limit of 0'
);
select throws_ok(
    $$select pgqrs.set_workflow_limits('wf', p_max_concurrency_per_key => 1000001)$$, '22023',
    'max_concurrency_per_key must be 1-1000000, got 1000001', 'a limit too big'
);
select throws_like(
    $$select pgqrs.set_workflow_limits('wf', p_rate_limit => '{"limit": 3, "every": "1 s"}')$$,
    'a rate limit is {"limit": n, "period": "1 minute"}%', 'an unknown key in a rate limit'
);
select throws_ok(
    $$select pgqrs.set_workflow_limits('wf', p_rate_limit => '{"limit": 0, "period": "1 minute"}')$$, '22023',
    'rate limit must be a whole number 1-1000000, got 0', 'a rate of 0'
);
select throws_ok(
    $$select pgqrs.set_workflow_limits('wf', p_rate_limit => '{"limit": 3, "period": "0.5 seconds"}')$$, '22023',
    'rate limit period must be an interval of 1 second to 1 day, got 0.5 seconds', 'a period under a second'
);
select throws_ok($$select pgqrs.set_workflow_limits('nope', 1)$$, 'QR001', null, 'an unknown workflow');
select throws_ok(
    $$select pgqrs.trigger('wf', '{}', p_priority => -101)$$, '22023',
    'priority must be -100 to 100, got -101', 'a priority out of range'
);
select throws_ok(
    $$select pgqrs.trigger('wf', '{}', p_concurrency_key => repeat('k', 256))$$, '22023',
    'concurrency key must be 1-255 characters', 'a concurrency key too long'
);
select is(
    ((select jsonb_agg(w) from pgqrs.workflows as w), (select count(*) from pgqrs.runs)),
    (select (b.wfs, b.runs) from t_before as b), 'nothing written'
);

select * from finish();
rollback;
