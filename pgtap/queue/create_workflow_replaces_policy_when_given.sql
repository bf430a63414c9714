-- A policy given again replaces the stored one (same row id); missing keys take the defaults.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_first as select * from pgqrs.create_workflow('wf');
create temp table t_second as select * from pgqrs.create_workflow('wf', '{"max_attempts": 5, "backoff": "fixed"}');

select is(
    (select retry_policy from t_first),
    '{"max_attempts": 3, "backoff": "exponential", "base_seconds": 1, "max_seconds": 300, "jitter": 0.1}'::jsonb,
    'without a policy the defaults are stored'
);
select is((select workflow_id from t_second), (select workflow_id from t_first), 'same workflow id');
select is(
    (select retry_policy from pgqrs.workflows where name = 'wf'),
    '{"max_attempts": 5, "backoff": "fixed", "base_seconds": 1, "max_seconds": 300, "jitter": 0.1}'::jsonb,
    'the new policy is stored, completed with defaults'
);
select is(
    (select retry_policy from pgqrs.create_workflow('wf')),
    (select retry_policy from t_second),
    'calling again without a policy keeps the stored one'
);

select * from finish();
rollback;
