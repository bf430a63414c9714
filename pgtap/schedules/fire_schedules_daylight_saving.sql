-- A 02:30 schedule in America/New_York through the spring-forward and the fall-back days, the engine clock moved
-- a quarter hour at a time: one run a day, at 03:30 EDT on the day 02:30 does not exist.
begin;
select plan(2);
set local "pgqrs.now" = '2030-03-09 00:00:00+00';
select pgqrs.create_workflow('wf');
select pgqrs.create_schedule('nightly', 'wf', '30 2 * * *', '{}', 'America/New_York');
select pgqrs.create_schedule('one-thirty', 'wf', '30 1 * * *', '{}', 'America/New_York');

create temp table t_fired (schedule text, tick timestamptz, run_id bigint);
create function pg_temp.fire_through(p_from timestamptz, p_to timestamptz)
returns void
language plpgsql
as $$
declare
    v_at timestamptz := p_from;
begin
    while v_at <= p_to loop
        perform set_config('pgqrs.now', v_at::text, true);
        insert into t_fired select * from pgqrs.fire_schedules();
        v_at := v_at + interval '15 minutes';
    end loop;
end
$$;
select pg_temp.fire_through('2030-03-09 00:00+00', '2030-03-12 00:00+00');
select pg_temp.fire_through('2030-11-02 00:00+00', '2030-11-05 00:00+00');

select results_eq(
    $$select tick from t_fired where schedule = 'nightly' order by tick$$,
    $$values ('2030-03-09 07:30+00'::timestamptz), ('2030-03-10 07:30+00'), ('2030-03-11 06:30+00'),
             ('2030-11-01 06:30+00'), ('2030-11-02 06:30+00'), ('2030-11-03 07:30+00'), ('2030-11-04 07:30+00')$$,
    '02:30 once a day; 10 March at 03:30 EDT; after the months between only the newest missed tick (latest)'
);
select results_eq(
    $$select tick from t_fired where schedule = 'one-thirty' and tick >= '2030-11-01' order by tick$$,
    $$values ('2030-11-01 05:30+00'::timestamptz), ('2030-11-02 05:30+00'), ('2030-11-03 06:30+00'),
             ('2030-11-04 06:30+00')$$,
    '01:30 on the fall-back day: once, at its second occurrence (01:30 EST, 06:30 UTC)'
);

select * from finish();
rollback;
