-- update_step cannot change a recorded SUCCESS; the same SUCCESS again is a no-op.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
create temp table t_first as select * from pgqrs.update_step((select run_id from t_run), 's', 'SUCCESS', '{"v": 1}');

select throws_ok(
    format($$select pgqrs.update_step(%s, 's', 'SUCCESS', '{"v": 2}')$$, (select run_id from t_run)),
    'QR005', null, 'another SUCCESS value raises QR005'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, 's', 'ERROR', '{"msg": "late failure"}')$$, (select run_id from t_run)),
    'QR005', null, 'ERROR after SUCCESS raises QR005'
);
select results_eq(
    $$select status, value from pgqrs.update_step((select run_id from t_run), 's', 'SUCCESS', '{"v": 1}')$$,
    $$values ('SUCCESS'::text, '{"v": 1}'::jsonb)$$,
    'the same SUCCESS again returns the row'
);
select results_eq(
    $$select status, value, error from pgqrs.steps where run_id = (select run_id from t_run)$$,
    $$values ('SUCCESS'::text, '{"v": 1}'::jsonb, null::jsonb)$$,
    'the first success stays'
);

select * from finish();
rollback;
