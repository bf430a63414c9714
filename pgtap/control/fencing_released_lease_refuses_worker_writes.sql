-- Fencing: a lease released by fail_step (transient) or release_run is gone: the old token raises QR004.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

-- Every worker write, as SQL text, for run p_run under lease token p_token.
create function pg_temp.worker_writes(p_run bigint, p_token uuid)
returns table (n integer, call text, sql text)
language sql
as $$
    select w.n, w.call, format(w.template, p_run, coalesce(quote_literal(p_token), 'null'))
    from (values
        (1, 'acquire_step', $q$select * from pgqrs.acquire_step(%s, 'b', %s::uuid)$q$),
        (2, 'complete_step', $q$select pgqrs.complete_step(%s, 'b', %s::uuid, '"late"')$q$),
        (3, 'fail_step', $q$select * from pgqrs.fail_step(%s, 'b', %s::uuid, '{"msg": "late"}')$q$),
        (4, 'pause_step', $q$select * from pgqrs.pause_step(%s, 'b', %s::uuid, '1 hour')$q$),
        (5, 'complete_run', $q$select pgqrs.complete_run(%s, %s::uuid, '"late"')$q$),
        (6, 'fail_run', $q$select pgqrs.fail_run(%s, %s::uuid, '{"msg": "late"}')$q$),
        (7, 'release_run', $q$select pgqrs.release_run(%s, %s::uuid)$q$)
    ) as w (n, call, template)
$$;

-- Everything stored about a run: its row, its message (live or archived) and its steps.
create function pg_temp.snapshot(p_run bigint)
returns jsonb
language sql
as $$
    select jsonb_build_object(
        'run', (select to_jsonb(r) from pgqrs.runs as r where r.run_id = p_run),
        'message', (select to_jsonb(m) from pgqrs.messages as m where m.message_id = p_run),
        'archive', (select to_jsonb(a) from pgqrs.messages_archive as a where a.message_id = p_run),
        'steps', (select jsonb_agg(to_jsonb(s) order by s.step_order) from pgqrs.steps as s where s.run_id = p_run)
    )
$$;

create temp table t_wf as select * from pgqrs.create_workflow('wf');
create temp table t_w1 as select pgqrs.register_worker('w1', 'host', null, 'wf') as worker_id;
create temp table t_w2 as select pgqrs.register_worker('w2', 'host', null, 'wf') as worker_id;
create temp table t_run as select * from pgqrs.trigger('wf', '{}');
-- worker 1 records step a, starts step b
create temp table t_lease1 as select * from pgqrs.dequeue('wf', (select worker_id from t_w1), 1, '30 seconds');
create temp table t_a as select pgqrs.complete_step(run_id, 'a', lease_token, '"a"') as ok from t_lease1;
create temp table t_b as select s.* from t_lease1 as l, lateral pgqrs.acquire_step(l.run_id, 'b', l.lease_token) as s;

create temp table t_fail as
select f.* from t_lease1 as l, lateral pgqrs.fail_step(l.run_id, 'b', l.lease_token, '{}', true, '1 minute') as f;
create temp table t_before as select pg_temp.snapshot((select run_id from t_run)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' after fail_step released the lease raises QR004')
from t_lease1 as l, lateral pg_temp.worker_writes(l.run_id, l.lease_token) as w
where w.call in ('complete_step', 'complete_run', 'acquire_step')
order by w.n;
select is(
    pg_temp.snapshot((select run_id from t_run)), (select snap from t_before), 'nothing changed'
);

set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_w2), 1, '30 seconds');
select is(
    (select pgqrs.release_run(run_id, lease_token) from t_lease2), 'QUEUED', 'release_run hands the run back'
);
select results_eq(
    $$select r.status, m.visible_at, m.lease_token from pgqrs.runs as r
      join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = (select run_id from t_run)$$,
    $$values ('QUEUED'::text, '2030-01-01 00:01:00+00'::timestamptz, null::uuid)$$,
    'QUEUED, visible now, no lease'
);
select throws_ok(w.sql, 'QR004', null, w.call || ' after release_run raises QR004')
from t_lease2 as l, lateral pg_temp.worker_writes(l.run_id, l.lease_token) as w
where w.call in ('complete_step', 'release_run')
order by w.n;

select * from finish();
rollback;
