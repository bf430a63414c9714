-- trigger_batch starts one QUEUED run with a message per array element, in order.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_runs as select * from pgqrs.trigger_batch('wf', '[{"n": 1}, {"n": 2}, {"n": 3}]');

select is((select count(*) from t_runs where created and message_id = run_id), 3::bigint, 'three runs created');
select results_eq(
    $$select r.input, r.status from pgqrs.runs as r join t_runs using (run_id) order by run_id$$,
    $$values ('{"n": 1}'::jsonb, 'QUEUED'::text), ('{"n": 2}', 'QUEUED'), ('{"n": 3}', 'QUEUED')$$,
    'inputs are stored in array order'
);
select is(
    (select count(*) from pgqrs.messages as m join t_runs as t on m.message_id = t.run_id), 3::bigint,
    'each run has its message'
);
set local "pgqrs.max_input_bytes" = '20';
select throws_ok(
    $$select * from pgqrs.trigger_batch('wf', '[{"n": 4}, {"n": "more than twenty bytes"}]')$$,
    '22023', null, 'one bad element (over pgqrs.max_input_bytes) refuses the whole batch'
);
select lives_ok(
    $$select * from pgqrs.trigger_batch('wf', '[{"n": "eleven"}, {"n": "twelve"}, {"n": "thirteen"}]')$$,
    'a batch over pgqrs.max_input_bytes in all, each element within it, is accepted'
);

select * from finish();
rollback;
