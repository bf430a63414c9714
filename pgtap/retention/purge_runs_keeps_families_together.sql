-- A child whose parent has not finished is kept (the parent may wait for it); a parent goes only after its
-- children; a fork outlives its purged origin.
begin;
select plan(5);

select pgqrs_tests.setup_workflow();
select pgqrs.create_workflow('kid');
create temp table t_kw as select pgqrs.register_worker('kw', 'h', null, 'kid') as worker_id;
set local "pgqrs.now" = '2030-01-01 00:00:00+00';
create temp table t_parent as select (pgqrs_tests.leased_run()).*;
create temp table t_child as
select pgqrs.start_child((select run_id from t_parent), 'c', (select lease_token from t_parent), 'kid') as run_id;
create temp table t_kl as select * from pgqrs.dequeue('kid', (select worker_id from t_kw));
select pgqrs.complete_run((select run_id from t_kl), (select lease_token from t_kl), '{}');

set local "pgqrs.now" = '2030-01-01 00:00:10+00';
select is(pgqrs.purge_runs('1 second'), 0::bigint, 'a finished child of a running parent is kept');
select pgqrs.complete_run((select run_id from t_parent), (select lease_token from t_parent), '{}');
create temp table t_fork as select pgqrs.fork_run((select run_id from t_parent), null) as run_id;
set local "pgqrs.now" = '2030-03-01 00:00:00+00';
select is(pgqrs.purge_runs('1 day'), 1::bigint, 'once the parent finished: the child first');
select is((select run_id from pgqrs.runs where run_id = (select run_id from t_child)), null, 'the child is gone');
select is(pgqrs.purge_runs('1 day'), 1::bigint, 'then the parent');
select is(
    (select forked_from from pgqrs.runs where run_id = (select run_id from t_fork)), null,
    'its fork is kept, no longer pointing at it'
);

select * from finish();
rollback;
