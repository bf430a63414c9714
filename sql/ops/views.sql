-- pgqrs: views for operators. Read-only; each answers one question from psql.

-- The one definition of a run's current step; pgqrs.run_status reads it from here.
create or replace view pgqrs.run_overview as
select
    r.run_id, w.name as workflow, r.status, r.attempt,
    coalesce(fl.step_id, cur.step_id) as current_step, coalesce(fl.status, cur.status) as current_step_status,
    r.created_at, r.started_at, r.finished_at, r.updated_at,
    -- a message never visible by itself (a pause or an event wait without timeout) has visible_at 'infinity',
    -- which clients cannot read as a time (Python's datetime has no infinity): shown as NULL
    nullif(m.visible_at, 'infinity') as visible_at, wk.name as worker, r.error,
    coalesce(fl.since, cur.since) as current_step_since, r.parent_run_id, r.version
from pgqrs.runs as r
join pgqrs.workflows as w using (workflow_id)
left join pgqrs.messages as m on m.message_id = r.run_id
left join pgqrs.workers as wk on wk.worker_id = m.worker_id
left join lateral (
    select s.step_id, s.status, case when s.status = 'RUNNING' then s.started_at else s.updated_at end as since
    from pgqrs.steps as s
    where s.run_id = r.run_id order by s.step_order desc limit 1
) as cur on true
left join lateral (  -- a step body running now, as the worker's heartbeat reports it
    select f.key as step_id, 'RUNNING'::text as status, f.value::timestamptz as since
    from jsonb_each_text(m.steps_in_flight) as f
    where
        not exists (  -- recorded since (the report is older than the record)
            select from pgqrs.steps as s
            where s.run_id = r.run_id and s.step_id = f.key and s.updated_at >= f.value::timestamptz
        )
    order by f.value::timestamptz desc limit 1
) as fl on r.status = 'RUNNING';
comment on view pgqrs.run_overview is
'Every run with its current step (the step body running now, once the worker''s heartbeat has reported it;
else the step recorded last), since when, while live its lease, the run that started it (parent_run_id) and the
version of the code it runs on (runs.version).';

create or replace view pgqrs.retrying_runs as
select
    r.run_id, w.name as workflow, s.step_id, s.attempt, s.retry_at, s.error as last_error,
    m.visible_at
from pgqrs.runs as r
join pgqrs.workflows as w using (workflow_id)
join pgqrs.steps as s on s.run_id = r.run_id and s.status = 'ERROR'
join pgqrs.messages as m on m.message_id = r.run_id
where r.status = 'QUEUED';
comment on view pgqrs.retrying_runs is 'Runs waiting to retry a failed step: when (retry_at) and why (last_error).';

create or replace view pgqrs.paused_runs as
select r.run_id, w.name as workflow, s.step_id, s.paused_until, r.updated_at as paused_at
from pgqrs.runs as r
join pgqrs.workflows as w using (workflow_id)
left join pgqrs.steps as s on s.run_id = r.run_id and s.status = 'PAUSED'
where r.status = 'PAUSED';
comment on view pgqrs.paused_runs is 'Paused runs, the step they wait in and until when (NULL: until resumed).';

create or replace view pgqrs.stuck_runs as
select
    r.run_id, w.name as workflow, wk.name as worker, m.leased_at, m.visible_at as lease_expired_at,
    pgqrs.now() - m.visible_at as expired_for, r.attempt
from pgqrs.runs as r
join pgqrs.workflows as w using (workflow_id)
join pgqrs.messages as m on m.message_id = r.run_id
left join pgqrs.workers as wk on wk.worker_id = m.worker_id
where r.status = 'RUNNING' and m.visible_at <= pgqrs.now();
comment on view pgqrs.stuck_runs is
'Runs whose worker lost its lease (crashed or hung): the next dequeue of their queue takes them over.';

create or replace view pgqrs.dead_letters as
select
    a.message_id, a.message_id as run_id, q.name as queue, r.error, r.attempt, a.read_count,
    a.enqueued_at, a.archived_at
from pgqrs.messages_archive as a
join pgqrs.queues as q using (queue_id)
join pgqrs.runs as r on r.run_id = a.message_id
where a.outcome = 'DEAD_LETTER';
comment on view pgqrs.dead_letters is 'Messages of runs that failed for good (permanent error or retries used up).';

create or replace view pgqrs.queue_stats as
select
    s.queue, s.ready, s.leased, s.delayed, s.depth, s.oldest_age, s.waiting,
    -- ready runs a limit holds back now, and which limits (sql/workflows/limits.sql)
    case
        when w.max_concurrency <= s.leased or rate.at_limit then s.ready else coalesce(keyed.held, 0)
    end as limited,
    nullif(concat_ws(
        ', ',
        case when w.max_concurrency <= s.leased and s.ready > 0 then 'max_concurrency' end,
        case when keyed.held > 0 then 'max_concurrency_per_key' end,
        case when rate.at_limit and s.ready > 0 then 'rate_limit' end
    ), '') as limited_by
from (
    select
        q.queue_id, q.workflow_id, q.name as queue,
        -- a message whose lease expired is deliverable again: ready, like a never-leased one
        count(m.message_id) filter (where m.visible_at <= pgqrs.now()) as ready,
        count(m.message_id) filter (where m.lease_token is not null and m.visible_at > pgqrs.now()) as leased,
        count(m.message_id) filter (where m.visible_at > pgqrs.now() and m.lease_token is null) as delayed,
        count(m.message_id) as depth,
        pgqrs.now() - min(m.enqueued_at) as oldest_age,
        count(m.message_id) filter (where r.status = 'WAITING') as waiting
    from pgqrs.queues as q
    left join pgqrs.messages as m using (queue_id)
    left join pgqrs.runs as r on r.run_id = m.message_id
    group by q.queue_id, q.workflow_id, q.name
) as s
join pgqrs.workflows as w on w.workflow_id = s.workflow_id
left join lateral (
    select count(*) as held from pgqrs.messages as m
    where
        m.queue_id = s.queue_id and m.visible_at <= pgqrs.now() and m.concurrency_key is not null
        and w.max_concurrency_per_key <= (
            select count(*) from pgqrs.messages as h
            where
                h.queue_id = s.queue_id and h.concurrency_key = m.concurrency_key and h.lease_token is not null
                and h.visible_at > pgqrs.now()
        )
) as keyed on w.max_concurrency_per_key is not null
left join lateral (
    select count(*) >= (w.rate_limit ->> 'limit')::integer as at_limit from pgqrs.rate_limit_log as g
    where g.queue_id = s.queue_id and g.delivered_at > pgqrs.now() - (w.rate_limit ->> 'period')::interval
) as rate on w.rate_limit is not null;
comment on view pgqrs.queue_stats is
'Per queue: ready now, leased, delayed (retries, delayed starts, pauses, waits), total depth, oldest message age,
waiting: runs in a durable wait (sleep, event, message, children), part of delayed until their time comes;
limited: ready runs that the workflow''s limits hold back now, and limited_by: which (max_concurrency,
max_concurrency_per_key, rate_limit).';

-- queue_stats per version of the workflow code (runs.version): during a rolling deploy, the live runs each
-- version still has; the old version's workers can stop when its depth reaches 0.
create or replace view pgqrs.queue_version_stats as
select
    q.name as queue, m.version,
    count(*) filter (where m.visible_at <= pgqrs.now()) as ready,
    count(*) filter (where m.lease_token is not null and m.visible_at > pgqrs.now()) as leased,
    count(*) filter (where m.visible_at > pgqrs.now() and m.lease_token is null) as delayed,
    count(*) as depth,
    pgqrs.now() - min(m.enqueued_at) as oldest_age,
    count(*) filter (where r.status = 'WAITING') as waiting,
    count(*) filter (where m.read_count = 0) as never_delivered
from pgqrs.messages as m
join pgqrs.queues as q using (queue_id)
join pgqrs.runs as r on r.run_id = m.message_id
group by q.name, m.version;
comment on view pgqrs.queue_version_stats is
'pgqrs.queue_stats per queue and version of the workflow code (runs.version; NULL: unversioned): the live runs
(queued, running, waiting, paused) of each version that has any. never_delivered: runs without a version yet that
the first worker to take them gives its own (counted under version NULL).';

create or replace view pgqrs.waiting_runs as
select r.run_id, wf.name as workflow, w.kind, w.key, w.until, w.since, w.step_id, w.pending
from pgqrs.runs as r
join pgqrs.workflows as wf using (workflow_id)
join pgqrs.waits as w on w.run_id = r.run_id
where r.status = 'WAITING';
comment on view pgqrs.waiting_runs is
'Runs in a durable wait: kind sleep (until the wake-up), event (the key, until the timeout or NULL) or message
(key = the topic of pgqrs.recv, until the timeout or NULL) or children (pending: how many of the child runs
it waits for have not finished), since when, at which step.';

create or replace view pgqrs.worker_status as
select
    wk.worker_id, wk.name, wk.hostname, wk.port, q.name as queue, wk.status, wk.started_at, wk.heartbeat_at,
    pgqrs.now() - wk.heartbeat_at as heartbeat_age,
    (
        select count(*) from pgqrs.messages as m
        where m.worker_id = wk.worker_id and m.lease_token is not null and m.visible_at > pgqrs.now()
    ) as leases
from pgqrs.workers as wk
join pgqrs.queues as q using (queue_id);
comment on view pgqrs.worker_status is 'Workers with heartbeat age and the number of leases they hold.';

-- Kept for readers of the guide, which names the journal pgqrs_workflow_steps.
create or replace view pgqrs.workflow_steps as
select s.run_id, s.step_id, s.status, s.value, s.error, s.attempt, s.retry_at, s.started_at, s.completed_at
from pgqrs.steps as s;
comment on view pgqrs.workflow_steps is 'The step journal (the guide''s pgqrs_workflow_steps).';
