-- pgqrs: views the dashboard reads (pgqrs dashboard, docs/dashboard.md) beyond the operators' views.

-- A lookup by key alone reads the primary key of pgqrs.idempotency_keys (workflow_id, idempotency_key) once per
-- workflow: a nested loop over the few workflows, not a scan of the runs.
create or replace view pgqrs.run_keys as
select k.run_id, w.name as workflow, k.idempotency_key
from pgqrs.workflows as w
join pgqrs.idempotency_keys as k on k.workflow_id = w.workflow_id;
comment on view pgqrs.run_keys is
'The idempotency key of each run started with one (pgqrs.trigger p_idempotency_key): find a run by its key.';

-- The overview's chart: runs finished lately, by outcome. Without the current-step lookups of run_overview,
-- so the scan for a time window reads the runs alone (there is no index on finished_at: a scan of runs).
create or replace view pgqrs.run_finishes as
select r.run_id, w.name as workflow, r.status, r.finished_at
from pgqrs.workflows as w
join pgqrs.runs as r on r.workflow_id = w.workflow_id
where r.finished_at is not null;
comment on view pgqrs.run_finishes is
'Finished runs (SUCCESS, ERROR, CANCELLED) with their workflow and when they finished.';
