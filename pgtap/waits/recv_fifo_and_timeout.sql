-- recv takes the messages of a topic in the order sent, one per step; a message sent with an idempotency key
-- twice is one message; at the timeout with no message the outcome TIMEOUT is recorded (a replay returns it).
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
create temp table t_ids as
select pgqrs.send(run_id, 't', '"a"', 'k1') as a, pgqrs.send(run_id, 't', '"b"') as b from t_lease;

select is(
    pgqrs.send((select run_id from t_lease), 't', '"a"', 'k1'), (select a from t_ids),
    'the same key and message again returns the first id'
);
select is((select count(*) from pgqrs.run_messages), 2::bigint, 'and adds nothing');
create function pg_temp.recv(p_step text, p_timeout text default 'null') returns setof record language plpgsql as $$
begin
    return query execute format('select p.status, p.message from t_lease as l, lateral pgqrs.recv(l.run_id, %L,'
                                ' l.lease_token, ''t'', %s) as p', p_step, p_timeout);
end
$$;
select results_eq(
    $$select * from pg_temp.recv('r1') as (s text, m jsonb)$$, $$values ('MESSAGE'::text, '"a"'::jsonb)$$,
    'the first step takes the oldest'
);
select results_eq(
    $$select * from pg_temp.recv('r2') as (s text, m jsonb)$$, $$values ('MESSAGE'::text, '"b"'::jsonb)$$,
    'the second step the next'
);
select results_eq(
    $$select * from pg_temp.recv('r1') as (s text, m jsonb)$$, $$values ('MESSAGE'::text, '"a"'::jsonb)$$,
    'a replay of the first returns its message'
);
select results_eq(
    $$select * from pg_temp.recv('r3', '''1 minute''') as (s text, m jsonb)$$,
    $$values ('WAITING'::text, null::jsonb)$$, 'no message left: WAITING'
);
set local "pgqrs.now" = '2030-01-01 00:01:00+00';
create temp table t_again as select * from pgqrs.dequeue('wf', (select worker_id from t_worker));
select results_eq(
    $$select p.* from t_again as a, lateral pgqrs.recv(a.run_id, 'r3', a.lease_token, 't', '1 minute') as p$$,
    $$values ('TIMEOUT'::text, null::jsonb)$$, 'at the timeout: TIMEOUT'
);
select results_eq(
    $$select s.status, s.value from pgqrs.steps as s where s.step_id = 'r3'$$,
    $$values ('SUCCESS'::text, '{"topic": "t", "timeout": true}'::jsonb)$$, 'recorded as the step''s outcome'
);

select * from finish();
rollback;
