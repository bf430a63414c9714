-- fork_run records the original in forked_from; a fork may copy a start_child step whose child has finished
-- (and waits for it as its own), but refuses one whose child has not.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'kid') as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_kid as
select pgqrs.start_child(l.run_id, 'spawn', l.lease_token, 'kid') as run_id
from t_lease as l;
select pgqrs.complete_step(l.run_id, 'after', l.lease_token, '1') from t_lease as l;

select throws_ok(
    format($$select pgqrs.fork_run(%s, 'after')$$, (select run_id from t_lease)),
    'QR003', format(
        'child run %s (step spawn of run %s) has not finished', (select run_id from t_kid),
        (select run_id from t_lease)
    ),
    'a copied start_child step whose child runs: refused'
);
create temp table t_kl as select * from pgqrs.dequeue('kid', (select worker_id from t_kw));
select pgqrs.complete_run(run_id, lease_token, '"kid done"') from t_kl;
create temp table t_fork as select pgqrs.fork_run((select run_id from t_lease), 'after') as run_id;
select is(
    (select forked_from from pgqrs.runs where run_id = (select run_id from t_fork)), (select run_id from t_lease),
    'forked_from names the original'
);
select is(
    (select s.forked_from from t_fork as f, lateral pgqrs.run_status(f.run_id) as s), (select run_id from t_lease),
    'run_status shows it'
);
create temp table t_fl as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id());
select is((select run_id from t_fl), (select run_id from t_fork), 'the fork is delivered');
select results_eq(
    $$select p.status, p.children -> 0 -> 'output' from t_fl as l,
      lateral pgqrs.wait_children(l.run_id, 'join', l.lease_token, array[(select run_id from t_kid)]) as p$$,
    $$values ('DONE'::text, '"kid done"'::jsonb)$$,
    'the fork waits for the copied child as its own'
);

select * from finish();
rollback;
