-- trigger, trigger_batch and dequeue refuse a version that is empty, too long or not a name, and change nothing.
begin;
select plan(6);

select pgqrs_tests.setup_workflow();
select throws_ok('select pgqrs.trigger(''wf'', ''{}'', p_version => '''')', '22023', 'version must not be empty');
select throws_ok(
    format('select pgqrs.trigger(%L, %L, p_version => %L)', 'wf', '{}', repeat('x', 129)), '22023', null,
    'trigger: a version over 128 characters'
);
select throws_ok(
    'select pgqrs.trigger(''wf'', ''{}'', p_version => ''v 1; drop table x'')', '22023', null,
    'trigger: a version that is not a name'
);
select throws_ok(
    'select pgqrs.trigger_batch(''wf'', ''[{}]'', p_version => '''')', '22023', null, 'trigger_batch: empty'
);
select throws_ok(
    format('select * from pgqrs.dequeue(%L, %s, p_version => %L)', 'wf', pgqrs_tests.worker_id(), E'v\n1'),
    '22023', null, 'dequeue: a control character'
);
select is((select count(*)::integer from pgqrs.runs), 0, 'no run was made');

select * from finish();
rollback;
