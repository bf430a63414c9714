-- The tables and views of schema pgqrs are exactly the expected set (a new one needs a test and this list).
-- The partitions of the history (runs, steps, messages_archive) come and go with the run ids: each of the three
-- has a default partition and ranged ones <table>_from_<first run id>, on the same bounds for the three.
begin;
select plan(4);

select is(
    array(
        select c.relname::text from pg_class as c
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
        order by 1
    ),
    array[
        'channel_key', 'events', 'idempotency_keys', 'messages', 'messages_archive', 'queues',
        'rate_limit_log', 'retention', 'run_messages', 'runs', 'schedule_defs', 'schema_version', 'steps',
        'waits', 'workers', 'workflows'
    ],
    'tables of pgqrs'
);
select is(
    array(
        select c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) as part
        from pg_class as c
        inner join pg_inherits as i on c.oid = i.inhrelid
        where c.relnamespace = 'pgqrs'::regnamespace and c.relkind = 'r'
        order by 1
    ),
    array(
        select t.name || '_' || b.part as part
        from unnest(array['messages_archive', 'runs', 'steps']) as t (name)
        cross join (
            select 'default DEFAULT' as part
            union all
            select format('from_%s FOR VALUES FROM (''%s'') TO (''%s'')', p.first_id, p.first_id, p.end_id) as part
            from pgqrs._history_partitions() as p
        ) as b
        order by 1
    ),
    'the partitions of runs, steps and messages_archive: a default one each and the same ranges'
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
        where c.connamespace = 'pgqrs'::regnamespace and c.contype = 'c' and c.conislocal order by 1
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
