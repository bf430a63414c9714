-- NULL or empty names are 22023 wherever a name is taken; nothing is written.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

select throws_ok($$select pgqrs.create_workflow(null)$$, '22023', null, 'create_workflow(NULL)');
select throws_ok($$select pgqrs.create_workflow('')$$, '22023', null, 'create_workflow('''')');
select throws_ok($$select * from pgqrs.trigger(null, '{}')$$, '22023', null, 'trigger(NULL)');
select throws_ok($$select * from pgqrs.trigger('', '{}')$$, '22023', null, 'trigger('''')');
select throws_ok($$select pgqrs.register_worker(null, 'host', null, 'wf')$$, '22023', null, 'register_worker(NULL)');
select throws_ok($$select pgqrs.register_worker('', 'host', null, 'wf')$$, '22023', null, 'register_worker('''')');
select throws_ok(
    $$select pgqrs.register_worker('w1', 'host', null, null)$$, '22023', null, 'register_worker without a queue'
);
select results_eq(
    $$select (select count(*) from pgqrs.workflows),
             (select count(*) from pgqrs.runs),
             (select count(*) from pgqrs.workers)$$,
    $$values (1::bigint, 0::bigint, 0::bigint)$$,
    'nothing written'
);

select * from finish();
rollback;
