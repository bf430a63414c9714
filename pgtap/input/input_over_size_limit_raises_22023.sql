-- Run input is limited to pgqrs.max_input_bytes (default 1 MiB); over it is 22023 and nothing is written.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

-- {"x": "<s>"} is 9 bytes plus the string
select throws_ok(
    format($$select * from pgqrs.trigger('wf', jsonb_build_object('x', %L))$$, repeat('a', 1048576)),
    '22023', null, 'over 1 MiB is refused'
);
select lives_ok(
    format($$select * from pgqrs.trigger('wf', jsonb_build_object('x', %L))$$, repeat('a', 1048576 - 9)),
    'exactly 1 MiB is accepted'
);
set local "pgqrs.max_input_bytes" = '100';
select throws_ok(
    format($$select * from pgqrs.trigger('wf', jsonb_build_object('x', %L))$$, repeat('a', 92)),
    '22023', null, 'with pgqrs.max_input_bytes = 100, 101 bytes are refused'
);
select lives_ok(
    format($$select * from pgqrs.trigger('wf', jsonb_build_object('x', %L))$$, repeat('a', 91)),
    'and 100 bytes accepted'
);
select throws_ok(
    $$select * from pgqrs.trigger_batch(
        'wf', jsonb_build_array('{}'::jsonb, jsonb_build_object('x', repeat('a', 200)))
    )$$,
    '22023', null, 'trigger_batch checks each element'
);
select is((select count(*) from pgqrs.runs), 2::bigint, 'only the two accepted runs were written');

select * from finish();
rollback;
