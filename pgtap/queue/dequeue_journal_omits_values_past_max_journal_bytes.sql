-- The journal handed to a worker is bounded: values past pgqrs.max_journal_bytes (summed in journal order) are
-- left out and marked, so no run can make dequeue fail; acquire_step still returns such a value. Every entry
-- keeps its recorded order.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
set local "pgqrs.max_journal_bytes" = '3000';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
select pgqrs.update_step((select run_id from t_run), 'small', 'SUCCESS', '1');
select pgqrs.update_step((select run_id from t_run), 'big', 'SUCCESS', to_jsonb(repeat('x', 5000)));
select pgqrs.update_step((select run_id from t_run), 'after', 'SUCCESS', '2');

create temp table t_d as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select is(
    (select (steps -> 'small') - 'order' from t_d),
    '{"status": "SUCCESS", "value": 1, "attempt": 0, "retry_at": null}',
    'a value within the bound is handed out'
);
select is(
    (select (steps -> 'big') - 'order' from t_d),
    '{"status": "SUCCESS", "value": null, "attempt": 0, "retry_at": null, "value_omitted": true}',
    'a value past the bound is left out and marked'
);
select is((select steps -> 'after' -> 'value_omitted' from t_d), 'true', 'so is every value after it');
select results_eq(
    $$select (d.steps -> k ->> 'order')::bigint from t_d as d, unnest(array['small', 'big', 'after']) as k$$,
    $$select s.step_order from pgqrs.steps as s join t_d using (run_id) order by s.step_order$$,
    'the entries keep their recorded order'
);
select is(
    (
        select length(value #>> '{}')
        from pgqrs.acquire_step((select run_id from t_d), 'big', (select lease_token from t_d))
    ),
    5000, 'acquire_step returns the whole value'
);

select * from finish();
rollback;
