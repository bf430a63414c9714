-- trigger joins the caller's transaction: rolled back, it leaves neither run nor message.
begin;
select plan(4);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

create temp table t_wf as select * from pgqrs.create_workflow('wf');

-- Inside the caller's transaction the run and its message are visible (the block then raises to roll back).
select throws_ok(
    $q$do $body$
      declare v_count bigint;
      begin
          perform pgqrs.trigger('wf', '{"n": 1}');
          select count(*) into v_count from pgqrs.runs as r join pgqrs.messages as m on m.message_id = r.run_id;
          raise exception using errcode = 'P0001', message = format('%s run with message', v_count);
      end $body$$q$,
    'P0001', '1 run with message', 'inside the transaction the run and its message exist'
);

-- (sqlfluff has no grammar for savepoints, hence the noqa)
savepoint before_trigger; -- noqa: PRS
do $$ begin perform pgqrs.trigger('wf', '{"n": 2}'); end $$;
rollback to savepoint before_trigger; -- noqa: PRS

select is((select count(*) from pgqrs.runs), 0::bigint, 'after rollback: no run');
select is((select count(*) from pgqrs.messages), 0::bigint, 'after rollback: no message');
select is((select count(*) from pgqrs.messages_archive), 0::bigint, 'after rollback: nothing archived');

select * from finish();
rollback;
