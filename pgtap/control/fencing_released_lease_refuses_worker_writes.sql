-- Fencing: a lease released by fail_step (transient) or release_run is gone: the old token raises QR004.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_w2 as select pgqrs.register_worker('w2', 'host', null, 'wf') as worker_id;
-- worker 1 records step a, starts step b
create temp table t_lease1 as select * from pgqrs_tests.run_at_step('b', array['a']);

create temp table t_fail as
select f.* from t_lease1 as l, lateral pgqrs.fail_step(l.run_id, 'b', l.lease_token, '{}', true, '1 minute') as f;
create temp table t_before as select pgqrs_tests.snapshot((select run_id from t_lease1)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' after fail_step released the lease raises QR004')
from t_lease1 as l, lateral pgqrs_tests.worker_writes(l.run_id, l.lease_token) as w
where w.call in ('complete_step', 'complete_run', 'acquire_step')
order by w.n;
select is(
    pgqrs_tests.snapshot((select run_id from t_lease1)), (select snap from t_before), 'nothing changed'
);

set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_w2), 1, '30 seconds');
select is(
    (select pgqrs.release_run(run_id, lease_token) from t_lease2), 'QUEUED', 'release_run hands the run back'
);
select results_eq(
    $$select r.status, m.visible_at, m.lease_token from pgqrs.runs as r
      join pgqrs.messages as m on m.message_id = r.run_id where r.run_id = (select run_id from t_lease1)$$,
    $$values ('QUEUED'::text, '2030-01-01 00:01:00+00'::timestamptz, null::uuid)$$,
    'QUEUED, visible now, no lease'
);
select throws_ok(w.sql, 'QR004', null, w.call || ' after release_run raises QR004')
from t_lease2 as l, lateral pgqrs_tests.worker_writes(l.run_id, l.lease_token) as w
where w.call in ('complete_step', 'release_run')
order by w.n;

select * from finish();
rollback;
