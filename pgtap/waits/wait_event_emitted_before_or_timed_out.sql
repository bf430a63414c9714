-- wait_event of an event emitted before: EVENT with the payload at once, the lease kept. A wait whose timeout
-- passes: delivered at the timeout, the replay records TIMEOUT; an emit after that wakes nobody and the step keeps
-- its TIMEOUT outcome. A wait without timeout: the message is never visible until the emit.
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
select pgqrs.emit_event('early', '"hello"');
create temp table t_lease as select * from pgqrs_tests.leased_run();
select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.wait_event(l.run_id, 'e', l.lease_token, 'early') as p$$,
    $$values ('EVENT'::text, '"hello"'::jsonb)$$,
    'emitted before: the payload at once'
);
select is((select status from pgqrs.runs where run_id = (select run_id from t_lease)), 'RUNNING', 'the run goes on');

select results_eq(
    $$select p.* from t_lease as l,
      lateral pgqrs.wait_event(l.run_id, 'late', l.lease_token, 'late', '1 minute') as p$$,
    $$values ('WAITING'::text, null::jsonb)$$,
    'a wait with a timeout'
);
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select is((select count(*) from t_again), 1::bigint, 'delivered at the timeout');
select results_eq(
    $$select p.* from t_again as a,
      lateral pgqrs.wait_event(a.run_id, 'late', a.lease_token, 'late', '1 minute') as p$$,
    $$values ('TIMEOUT'::text, null::jsonb)$$,
    'the replay records TIMEOUT'
);
select is(pgqrs.emit_event('late', '1'), true, 'an emit after the timeout');
select results_eq(
    $$select p.* from t_again as a,
      lateral pgqrs.wait_event(a.run_id, 'late', a.lease_token, 'late', '1 minute') as p$$,
    $$values ('TIMEOUT'::text, null::jsonb)$$,
    'the outcome stays TIMEOUT'
);

create temp table t_forever as select * from pgqrs_tests.leased_run('{"n": 2}');
select pgqrs.wait_event(run_id, 'forever', lease_token, 'never-emitted') from t_forever;
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_forever)), 'infinity',
    'no timeout: never visible until the emit'
);

select * from finish();
rollback;
