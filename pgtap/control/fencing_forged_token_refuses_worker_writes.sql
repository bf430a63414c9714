-- Fencing: a forged (random) or NULL token is refused with QR004 while the real lease is valid; nothing changes.
begin;
select plan(13);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
-- worker 1 records step a, starts step b
create temp table t_lease1 as select * from pgqrs_tests.run_at_step('b', array['a']);

set local "pgqrs.now" = '2030-01-01 00:00:10+00';
create temp table t_before as select pgqrs_tests.snapshot((select run_id from t_lease1)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' with a forged token raises QR004')
from t_lease1 as l, lateral pgqrs_tests.worker_writes(l.run_id, gen_random_uuid()) as w
where w.call <> 'release_run'
order by w.n;
select
    throws_ok(
        w.sql, 'QR004', null, 'complete_step with a NULL token raises QR004'
    )
from t_lease1 as l, lateral pgqrs_tests.worker_writes(l.run_id, null) as w
where w.call = 'complete_step';
select is(
    pgqrs_tests.snapshot((select run_id from t_lease1)), (select snap from t_before), 'nothing changed'
);

select * from finish();
rollback;
