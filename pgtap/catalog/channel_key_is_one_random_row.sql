-- The key of the pgqrs_runs tokens: one row of 32 bytes, made at install, kept by a later install, and what
-- runs_channel_key() returns.
begin;
select plan(4);

select is((select count(*)::integer from pgqrs.channel_key), 1, 'one key');
select is((select length(k.secret) from pgqrs.channel_key as k), 32, 'of 32 bytes');
select is(pgqrs.runs_channel_key(), (select k.secret from pgqrs.channel_key as k), 'runs_channel_key returns it');

-- the install's insert again (sql/tables/channel_key.sql): the key stays
create temp table key_before on commit drop as select k.secret from pgqrs.channel_key as k;
insert into pgqrs.channel_key (secret)
values (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
on conflict do nothing;
select is(pgqrs.runs_channel_key(), (select b.secret from key_before as b), 'kept by a re-install');

select * from finish();
rollback;
