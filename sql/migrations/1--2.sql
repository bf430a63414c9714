-- pgqrs schema 1 -> 2. Functions, views and grants are re-applied from sql/*.sql after this file: only what
-- re-running those files cannot do is here.

-- steps.max_attempts: the attempt limit of a step's own retry policy (fail_step p_retry_policy), which
-- acquire_step honours (commit 80d26a9).
alter table pgqrs.steps add column if not exists max_attempts integer;

-- Signatures that changed since version 1 (complete_step and fail_step gained p_duration): CREATE OR REPLACE
-- would add an overload next to the old one, so the old one goes. Dropping a signature the current files still
-- define is harmless: they create it again right after (and 90_grants.sql grants it again).
drop function if exists pgqrs.complete_step(bigint, text, uuid, jsonb);
drop function if exists pgqrs.fail_step(bigint, text, uuid, jsonb, boolean, interval, jsonb);
