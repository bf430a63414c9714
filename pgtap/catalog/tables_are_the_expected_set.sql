-- The tables and views of schema pgqrs are exactly the expected set (a new one needs a test and this list).
begin;
select plan(3);

select tables_are(
    'pgqrs',
    array[
        'schema_version', 'workflows', 'queues', 'workers', 'runs', 'messages', 'messages_archive', 'steps',
        'channel_key', 'waits', 'events', 'run_messages', 'rate_limit_log', 'schedule_defs',
        'retention'
    ],
    'tables of pgqrs'
);
select views_are(
    'pgqrs',
    array[
        'run_overview', 'retrying_runs', 'paused_runs', 'stuck_runs', 'dead_letters', 'queue_stats',
        'worker_status', 'workflow_steps', 'waiting_runs', 'schedules', 'run_keys', 'run_finishes',
        'queue_version_stats', 'workflow_records', 'run_records', 'step_records', 'archived_messages'
    ],
    'views of pgqrs'
);
select is(
    array(
        select c.conname::text from pg_constraint as c
        where c.connamespace = 'pgqrs'::regnamespace and c.contype = 'c' order by 1
    ),
    array[
        'channel_key_one_row', 'messages_archive_outcome_check', 'runs_status_check',
        'schedule_defs_catch_up_check', 'steps_kind_check', 'steps_status_check', 'waits_kind_check',
        'workers_status_check'
    ],
    'statuses are text with named CHECKs'
);

select * from finish();
rollback;
