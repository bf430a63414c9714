-- A step that pauses again and again (polling for an event) keeps its retry budget: after three pause
-- timeouts its first transient failure still schedules a retry instead of dead-lettering the run.
begin;
select plan(3);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 2}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
create temp table t_pause (n integer, status text);

do $$
declare
    v_lease record;
    v_status text;
begin
    for i in 1..3 loop
        perform set_config('pgqrs.now', (timestamptz '2030-01-01 00:00:00+00' + i * interval '1 hour')::text, true);
        select * into v_lease from pgqrs.dequeue('wf', (select worker_id from t_worker));
        select p.status into v_status from pgqrs.pause_step(v_lease.run_id, 'poll', v_lease.lease_token, '1 minute') as p;
        insert into t_pause values (i, v_status);
    end loop;
end
$$;
set local "pgqrs.now" = '2030-01-01 05:00:00+00';
create temp table t_lease as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));

select is((select count(*) from t_pause where status = 'PAUSED'), 3::bigint, 'the step paused three times');
select is(
    (select attempt from pgqrs.steps where run_id = (select run_id from t_run)), 1,
    'three pauses count one attempt'
);
select is(
    (
        select f.run_status from t_lease as l,
            lateral pgqrs.fail_step(l.run_id, 'poll', l.lease_token, '{"e": "timeout"}', true) as f
    ),
    'QUEUED',
    'the first transient failure is retried (attempt 2 of 2), not dead-lettered'
);

select * from finish();
rollback;
