-- Fencing: once its lease expired, every write of the worker raises QR004 and changes nothing.
begin;
select plan(13);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select pgqrs_tests.setup_workflow();
-- worker 1 records step a, starts step b
create temp table t_lease1 as select * from pgqrs_tests.run_at_step('b', array['a']);

set local "pgqrs.now" = '2030-01-01 00:00:30+00';
create temp table t_before as select pgqrs_tests.snapshot((select run_id from t_lease1)) as snap;

select throws_ok(w.sql, 'QR004', null, w.call || ' with an expired lease raises QR004')
from t_lease1 as l, lateral pgqrs_tests.worker_writes(l.run_id, l.lease_token) as w
order by w.n;
select is(
    pgqrs_tests.snapshot((select run_id from t_lease1)), (select snap from t_before), 'nothing changed'
);

select * from finish();
rollback;
