-- A fork that copies steps stays on the original's version (the steps were recorded by that code); a fork
-- with no step copied is a fresh run without a version. trigger_batch gives every run its p_version.
begin;
select plan(3);

select pgqrs_tests.setup_workflow();
select pgqrs.trigger('wf', '{}', p_version => 'v1');
create temp table t_lease as select * from pgqrs.dequeue('wf', pgqrs_tests.worker_id(), p_version => 'v1');
select pgqrs.acquire_step((select run_id from t_lease), 'a', (select lease_token from t_lease));
select pgqrs.complete_step((select run_id from t_lease), 'a', (select lease_token from t_lease), '1');
select pgqrs.acquire_step((select run_id from t_lease), 'b', (select lease_token from t_lease));
select pgqrs.complete_step((select run_id from t_lease), 'b', (select lease_token from t_lease), '2');

create temp table t_forks as
select
    pgqrs.fork_run((select run_id from t_lease), 'b') as copied,
    pgqrs.fork_run((select run_id from t_lease)) as bare;
select is(
    (select version from pgqrs.runs where run_id = (select copied from t_forks)), 'v1',
    'a fork with a copied step keeps v1'
);
select is(
    (select version from pgqrs.messages where message_id = (select bare from t_forks)), null,
    'a fork with nothing copied has no version'
);
create temp table t_batch as select run_id from pgqrs.trigger_batch('wf', '[{}, {}]', p_version => 'v7');
select is(
    (select array_agg(distinct m.version) from t_batch as t join pgqrs.messages as m on m.message_id = t.run_id),
    array['v7'],
    'trigger_batch gives each run (and message) its version'
);

select * from finish();
rollback;
