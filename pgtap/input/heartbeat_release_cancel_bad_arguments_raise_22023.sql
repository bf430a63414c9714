-- Bad arguments to heartbeat (steps in flight), release_run (the cause) and cancel_run (the reason): 22023, and
-- nothing changes.
begin;
select plan(11);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_d as select * from pgqrs_tests.leased_run();

select throws_ok(
    format(
        'select pgqrs.heartbeat(%s, array[%L]::uuid[], %L)', (select worker_id from t_worker),
        (select lease_token from t_d), '{"not": "an array"}'
    ),
    '22023', null, 'steps not an array'
);
select throws_ok(
    format(
        'select pgqrs.heartbeat(%s, array[%L]::uuid[], %L)', (select worker_id from t_worker),
        (select lease_token from t_d),
        jsonb_build_array(jsonb_build_object(
            'lease_token', (select lease_token from t_d), 'step_id', '',
            'running_for', 1
        ))
    ),
    '22023', null, 'an empty step id'
);
select throws_ok(
    format(
        'select pgqrs.heartbeat(%s, array[%L]::uuid[], %L)', (select worker_id from t_worker),
        (select lease_token from t_d),
        jsonb_build_array(jsonb_build_object(
            'lease_token', (select lease_token from t_d), 'step_id', 's',
            'running_for', -1
        ))
    ),
    '22023', null, 'a negative running_for'
);
-- malformed entries are refused by the check, never by a cast inside the engine (22P02, 22003: the fuzz found
-- a lease token given as a JSON array)
select
    throws_ok(
        format(
            'select pgqrs.heartbeat(%s, array[%L]::uuid[], %L)', (select worker_id from t_worker),
            (select lease_token from t_d), steps
        ),
        '22023', null, what
    )
from (
    values
    ('[{"lease_token": [], "step_id": "s", "running_for": 1}]', 'a lease token that is an array'),
    ('[{"lease_token": "not-a-uuid", "step_id": "s", "running_for": 1}]', 'a lease token that is not a uuid'),
    ('[7]', 'an entry that is not an object'),
    (
        '[{"lease_token": "00000000-0000-0000-0000-000000000000", "step_id": "s", "running_for": "1"}]',
        'running_for as text'
    ),
    (
        '[{"lease_token": "00000000-0000-0000-0000-000000000000", "step_id": "s", "running_for": 1e400}]',
        'running_for beyond a float'
    )
) as bad (steps, what);
select throws_ok(
    format('select pgqrs.release_run(%s, %L, %L)', (select run_id from t_d), (select lease_token from t_d), '"text"'),
    '22023', null, 'a release cause that is not an object'
);
select throws_ok(
    format('select pgqrs.cancel_run(%s, %L)', (select run_id from t_d), repeat('x', 1001)),
    '22023', null, 'a reason over 1000 characters'
);
select results_eq(
    $$select r.status, (select count(*) from pgqrs.steps) from pgqrs.runs as r$$,
    $$values ('RUNNING'::text, 0::bigint)$$,
    'the run is unchanged, no step recorded'
);

select * from finish();
rollback;
