-- Fencing: after another worker took the run over, the first worker's writes raise QR004 and change nothing;
-- the new holder continues after the last recorded step.
begin;
select plan(13);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
create temp table t_w2 as select pgqrs.register_worker('w2', 'host', null, 'wf') as worker_id;
-- worker 1 records step a, starts step b
create temp table t_lease1 as select * from pgqrs_tests.run_at_step('b', array['a']);

set local "pgqrs.now" = '2030-01-01 00:00:31+00';
create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_w2), 1, '30 seconds');
create temp table t_before as select pgqrs_tests.snapshot((select run_id from t_lease1)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' after a takeover raises QR004')
from t_lease1 as l, lateral pgqrs_tests.worker_writes(l.run_id, l.lease_token) as w
where w.call <> 'release_run'
order by w.n;
select is(
    pgqrs_tests.snapshot((select run_id from t_lease1)), (select snap from t_before), 'nothing changed'
);
select results_eq(
    $$select (select a.value from t_lease2 as l, lateral pgqrs.acquire_step(l.run_id, 'a', l.lease_token) as a),
             (select pgqrs.complete_step(run_id, 'b', lease_token, '"b"') from t_lease2)$$,
    $$values ('"a"'::jsonb, true)$$,
    'the new holder replays a and records b'
);

select * from finish();
rollback;
