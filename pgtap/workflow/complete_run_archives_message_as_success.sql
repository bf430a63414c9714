-- complete_run: run SUCCESS with its output, message moved to messages_archive with outcome SUCCESS.
begin;
select plan(6);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.leased_run();
set local "pgqrs.now" = '2030-01-01 00:00:07+00';

select is(
    (select pgqrs.complete_run(run_id, lease_token, '{"zip": "s3://b/out.zip"}') from t_lease), 'SUCCESS',
    'complete_run returns SUCCESS'
);
select results_eq(
    $$select status, output, error, finished_at, visible_at from pgqrs.run_status((select run_id from t_lease))$$,
    $$values ('SUCCESS'::text, '{"zip": "s3://b/out.zip"}'::jsonb, null::jsonb,
              '2030-01-01 00:00:07+00'::timestamptz, null::timestamptz)$$,
    'the run is SUCCESS with its output; no next delivery'
);
select is(
    (select count(*) from pgqrs.messages where message_id = (select run_id from t_lease)), 0::bigint,
    'the message left the live queue'
);
select results_eq(
    $$select outcome, archived_at, read_count, worker_id from pgqrs.messages_archive
      where message_id = (select run_id from t_lease)$$,
    $$select 'SUCCESS'::text, '2030-01-01 00:00:07+00'::timestamptz, 1, (select worker_id from t_worker)$$,
    'archived with outcome SUCCESS'
);
select is(pgqrs.archive((select message_id from t_lease)), false, 'archive() afterwards returns false');
select is(
    (select count(*) from pgqrs.dead_letters where run_id = (select run_id from t_lease)), 0::bigint,
    'a success is not a dead letter'
);

select * from finish();
rollback;
