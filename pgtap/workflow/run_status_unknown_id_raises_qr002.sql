-- Every call that takes a run id raises QR002 for an id that does not exist.
begin;
select plan(7);
set local "pgqrs.now" = '2030-01-01 00:00:00+00';

select throws_ok('select * from pgqrs.run_status(-1)', 'QR002', null, 'run_status');
select throws_ok('select * from pgqrs.run_status(null)', 'QR002', null, 'run_status(NULL)');
select throws_ok('select * from pgqrs.run_steps(-1)', 'QR002', null, 'run_steps');
select throws_ok('select pgqrs.resume_run(-1)', 'QR002', null, 'resume_run');
select throws_ok('select pgqrs.retry_run(-1)', 'QR002', null, 'retry_run');
select throws_ok($$select pgqrs.update_step(-1, 's', 'SUCCESS', '1')$$, 'QR002', null, 'update_step');
select throws_ok(
    $$select * from pgqrs.acquire_step(-1, 's', gen_random_uuid())$$, 'QR002', null, 'acquire_step'
);

select * from finish();
rollback;
