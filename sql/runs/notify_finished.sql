-- pgqrs: announcing finished runs on the pgqrs_runs channel.

-- A finished run is announced on pgqrs_runs (by pgqrs._archive_message, sql/queue/archive.sql) without telling a
-- non-member which one, nor how it ended: any login can LISTEN there. The payload is a token, the first 16 hex
-- digits of sha256(key || run id as text), with the per-database key of pgqrs.channel_key that only members read
-- (runs_channel_key); result() waiters compute the tokens of their runs and read the outcome with run_status.
-- (A secret prefix, not an HMAC: length extension forges longer messages, it does not reveal the run id.)
create or replace function pgqrs.runs_channel_key()
returns bytea
language plpgsql
stable
security definer
set search_path = pg_catalog, pgqrs, pg_temp
as $$
begin
    return (select k.secret from pgqrs.channel_key as k);
end
$$;
comment on function pgqrs.runs_channel_key() is
'The key of the pgqrs_runs channel: a run that finishes is announced there by the token
left(encode(sha256(key || run_id::text), ''hex''), 16), so only callers of this function can tell which run.';
