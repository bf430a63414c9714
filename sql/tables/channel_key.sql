-- pgqrs: the key of the pgqrs_runs notification tokens.

-- The key that hides run ids on the pgqrs_runs channel (see sql/runs/notify_finished.sql): random, one per
-- database, made by the first install and kept by every later one. Readable by pgqrs_admin only; members of
-- pgqrs_worker and pgqrs_client get it through pgqrs.runs_channel_key().
create table if not exists pgqrs.channel_key (
    one_row boolean primary key default true constraint channel_key_one_row check (one_row),
    secret bytea not null
);
comment on table pgqrs.channel_key is
'The key of the pgqrs_runs notification tokens (random, per database; one row). See pgqrs.runs_channel_key().';
-- gen_random_uuid() draws from the server's strong random source: two of them give 244 random bits
insert into pgqrs.channel_key (secret)
values (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
on conflict do nothing;
