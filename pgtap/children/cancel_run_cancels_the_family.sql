-- cancel_run of a parent cancels its unfinished children and theirs, top-down, in the same transaction; a
-- finished child stays as it was.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'kid') as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_kids as
select n, pgqrs.start_child(l.run_id, 'spawn' || n, l.lease_token, 'kid') as run_id
from t_lease as l, generate_series(1, 2) as n;
-- child 1 finishes; child 2 runs and starts a grandchild
create temp table t_kl as select * from pgqrs.dequeue('kid', (select worker_id from t_kw), 2);
select pgqrs.complete_run(l.run_id, l.lease_token, '1') from t_kl as l join t_kids as k using (run_id) where k.n = 1;
create temp table t_grand as
select pgqrs.start_child(l.run_id, 'g', l.lease_token, 'kid') as run_id
from t_kl as l join t_kids as k using (run_id) where k.n = 2;

select is(pgqrs.cancel_run((select run_id from t_lease), 'withdrawn'), 'CANCELLED', 'the parent is cancelled');
select results_eq(
    $$select k.n, r.status, r.error ->> 'reason' from t_kids as k join pgqrs.runs as r using (run_id) order by k.n$$,
    $$values (1, 'SUCCESS'::text, null::text),
             (2, 'CANCELLED', format('parent run %s was cancelled', (select run_id from t_lease)))$$,
    'the finished child stays; the running one is cancelled'
);
select results_eq(
    $$select r.status, r.error ->> 'reason' from t_grand as g join pgqrs.runs as r using (run_id)$$,
    $$values ('CANCELLED'::text, format('parent run %s was cancelled', (select run_id from t_kids where n = 2)))$$,
    'the grandchild too'
);
select throws_ok(
    format(
        $$select pgqrs.complete_step(%s, 'x', %L, '1')$$,
        (select l.run_id from t_kl as l join t_kids as k using (run_id) where k.n = 2),
        (select l.lease_token from t_kl as l join t_kids as k using (run_id) where k.n = 2)
    ),
    'QR009', null, 'the child''s worker is fenced off'
);

select * from finish();
rollback;
