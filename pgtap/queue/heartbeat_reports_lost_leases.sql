-- heartbeat reports held = false for a lease that expired, was taken over, or never existed; it extends none.
begin;
select plan(5);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_w1 as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_w2 as select pgqrs.register_worker('w2', 'host', null, 'wf') as worker_id;
create temp table t_lease1 as select * from pgqrs_tests.leased_run();

set local "pgqrs.now" = '2030-01-01 00:00:31+00';
select results_eq(
    $$select held, visible_until from pgqrs.heartbeat((select worker_id from t_w1),
                                                      array[(select lease_token from t_lease1)])$$,
    $$values (false, null::timestamptz)$$,
    'an expired lease is reported lost'
);
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_lease1)),
    '2030-01-01 00:00:30+00'::timestamptz, 'and is not extended'
);

create temp table t_lease2 as select * from pgqrs.dequeue('wf', (select worker_id from t_w2), 1, '30 seconds');
select results_eq(
    $$select held from pgqrs.heartbeat((select worker_id from t_w1),
                                       array[(select lease_token from t_lease1), gen_random_uuid()])$$,
    $$values (false), (false)$$,
    'a taken-over lease and a forged token are reported lost'
);
select is(
    (select visible_at from pgqrs.messages where message_id = (select run_id from t_lease1)),
    '2030-01-01 00:01:01+00'::timestamptz, 'the new holder''s lease is untouched'
);
select results_eq(
    $$select held from pgqrs.heartbeat((select worker_id from t_w2), array[(select lease_token from t_lease2)])$$,
    $$values (true)$$,
    'the new holder''s heartbeat holds'
);

select * from finish();
rollback;
