-- update_step takes only the step statuses (exact spelling); anything else is 22023 and writes nothing.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

select throws_ok(
    format($$select pgqrs.update_step(%s, 's', 'DONE', '1')$$, (select run_id from t_run)), '22023', null, 'DONE'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, 's', 'success', '1')$$, (select run_id from t_run)), '22023', null,
    'lower-case success'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, 's', null, '1')$$, (select run_id from t_run)), '22023', null, 'NULL'
);
select throws_ok(
    format($$select pgqrs.update_step(%s, 's', 'SKIPPED', '1')$$, (select run_id from t_run)), '22023', null,
    'an acquire_step answer is not a step status'
);
select is((select count(*) from pgqrs.steps), 0::bigint, 'no step written');

select * from finish();
rollback;
