-- An engine call that fails the same way every time cannot loop: a release with its cause is a failed delivery,
-- delayed by the backoff, and after max_attempts of them in a row the run ends ERROR (kind engine_call_failed).
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as
select
    pgqrs_tests.setup_workflow('{"max_attempts": 2, "backoff": "fixed", "base_seconds": 5, "jitter": 0}') as worker_id;
create temp table t_d1 as select * from pgqrs_tests.leased_run();

select is(
    pgqrs.release_run(
        (select run_id from t_d1), (select lease_token from t_d1),
        '{"sqlstate": "57014", "message": "canceling statement due to statement timeout"}'
    ),
    'QUEUED', 'the first failed delivery requeues the run'
);
select results_eq(
    $$select r.status, r.error ->> 'kind', m.visible_at, m.failed_deliveries
      from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id$$,
    $$values ('QUEUED'::text, 'engine_call_failed'::text, '2030-01-01 00:00:05+00'::timestamptz, 1)$$,
    'visible after the backoff, the cause kept, counted'
);
select is(
    (select count(*) from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds')), 0::bigint,
    'not delivered before the backoff'
);
set local "pgqrs.now" = '2030-01-01 00:00:05+00';
create temp table t_d2 as select * from pgqrs.dequeue('wf', (select worker_id from t_worker), 1, '30 seconds');
select is(
    pgqrs.release_run(
        (select run_id from t_d2), (select lease_token from t_d2),
        '{"sqlstate": "57014", "message": "canceling statement due to statement timeout"}'
    ),
    'ERROR', 'the second failed delivery in a row ends the run'
);
select results_eq(
    $$select status, error ->> 'kind', error -> 'cause' ->> 'sqlstate' from pgqrs.runs$$,
    $$values ('ERROR'::text, 'engine_call_failed'::text, '57014'::text)$$,
    'run ERROR, kind engine_call_failed, naming the cause'
);
select is((select outcome from pgqrs.messages_archive), 'DEAD_LETTER', 'a dead letter');

select * from finish();
rollback;
