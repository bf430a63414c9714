-- Fencing: a forged (random) or NULL token is refused with QR004 while the real lease is valid; nothing changes.
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

set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_before as select pg_temp.snapshot((select run_id from t_run)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' with a forged token raises QR004')
from t_lease1 as l, lateral pg_temp.worker_writes(l.run_id, gen_random_uuid()) as w
where w.call <> 'release_run'
order by w.n;
select
    throws_ok(
        w.sql, 'QR004', null, 'complete_step with a NULL token raises QR004'
    )
from t_lease1 as l, lateral pg_temp.worker_writes(l.run_id, null) as w
where w.call = 'complete_step';
select is(
    pg_temp.snapshot((select run_id from t_run)), (select snap from t_before), 'nothing changed'
);

select * from finish();
rollback;
