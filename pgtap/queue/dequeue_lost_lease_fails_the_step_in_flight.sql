-- A lost lease whose step in flight is known (the heartbeat reported it) is a failed attempt of that step, under
-- that step's retry policy: the run is delivered again until the step's attempts are used up, then ends ERROR.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow('{"max_attempts": 2}') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');

create function pg_temp.deliver_and_die(p_at timestamptz) returns void language plpgsql as $$
declare
    v_lease record;
begin
    perform set_config('pgqrs.now', p_at::text, true);
    select * into v_lease from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
    perform set_config('pgqrs.now', (p_at + interval '10 seconds')::text, true);
    perform pgqrs.heartbeat(
        (select worker_id from t_worker), array[v_lease.lease_token],
        jsonb_build_array(jsonb_build_object('lease_token', v_lease.lease_token, 'step_id', 'slow', 'running_for', 10))
    );
end
$$;

select pg_temp.deliver_and_die('2030-01-01 00:00:00+00');
select is(
    (select steps_in_flight from pgqrs.messages), '{"slow": "2030-01-01T00:00:00+00:00"}'::jsonb,
    'the heartbeat recorded the step in flight on the message, started running_for seconds ago'
);
select pg_temp.deliver_and_die('2030-01-01 00:01:00+00');
select results_eq(
    $$select status, attempt, error ->> 'kind' from pgqrs.steps$$,
    $$values ('ERROR'::text, 1, 'lease_expired'::text)$$,
    'the lost lease failed attempt 1 of the step'
);
select is((select status from pgqrs.runs), 'RUNNING', 'the run was delivered again');

set local "pgqrs.now" = '2030-01-01 00:02:00+00';
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds')), 0::bigint,
    'the second lost lease uses up the step''s attempts: no delivery'
);
select results_eq(
    $$select status, error ->> 'kind', error ->> 'step' from pgqrs.runs$$,
    $$values ('ERROR'::text, 'lease_expired'::text, 'slow'::text)$$,
    'run ERROR, kind lease_expired, naming the step'
);
select results_eq(
    $$select status, error ->> 'kind' from pgqrs.steps$$,
    $$values ('ERROR'::text, 'lease_expired'::text)$$,
    'the step records the failed attempt'
);

select * from finish();
rollback;
