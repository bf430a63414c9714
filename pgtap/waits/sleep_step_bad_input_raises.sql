-- sleep_step refuses bad input and changes nothing: NULL, infinite or too far a time (22023), a lease that is not
-- held (QR004), a step id of an ordinary step or of an event wait (QR010).
begin;
select plan(8);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_worker as select pgqrs_tests.setup_workflow() as worker_id;
create temp table t_lease as select * from pgqrs_tests.run_at_step('body', array['done']);
create temp table t_before as select * from pgqrs_tests.snapshot((select run_id from t_lease));

create function pg_temp.sleep(p_step text, p_until text, p_token uuid default null) returns text language sql as $$
    select format($q$select pgqrs.sleep_step(%s, %L, %L, %s)$q$, l.run_id, p_step, coalesce(p_token, l.lease_token), p_until)
    from t_lease as l
$$;

select throws_ok(pg_temp.sleep('nap', 'null'), '22023', null, 'NULL time');
select throws_ok(pg_temp.sleep('nap', '''infinity'''), '22023', null, 'infinity');
select throws_ok(pg_temp.sleep('nap', '''-infinity'''), '22023', null, '-infinity');
select throws_ok(pg_temp.sleep('nap', '''2031-01-02 00:00:00+00'''), '22023', null, 'more than 365 days ahead');
select
    throws_ok(pg_temp.sleep('nap', '''2030-01-01 01:00:00+00''', gen_random_uuid()), 'QR004', null, 'lease not held');
select throws_ok(pg_temp.sleep('done', '''2030-01-01 01:00:00+00'''), 'QR010', null, 'an ordinary step''s id');
select throws_ok(pg_temp.sleep('', '''2030-01-01 01:00:00+00'''), '22023', null, 'empty step id');
select results_eq(
    $$select * from pgqrs_tests.snapshot((select run_id from t_lease))$$, $$select * from t_before$$, 'nothing changed'
);

select * from finish();
rollback;
