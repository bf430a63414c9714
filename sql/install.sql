-- pgqrs: the engine's SQL, one file per public function or tight group, in the order it applies. This file
-- is the one list: `psql -f sql/install.sql` runs it, and pgqrs.install (pgqrs_py/pgqrs/install.py) reads
-- the same lines and applies the same files in the same order. Only `\ir <file>` lines and comments belong
-- here. A file under sql/ that is not listed (migrations/ and fixtures/ aside) fails tests/test_manifest.py.
-- Every file is safe to run twice (create ... if not exists, create or replace). The order matters where a
-- statement needs an earlier object: a table's default calls pgqrs.now(), a LANGUAGE sql function's body is
-- checked when it is created, the views read the tables, and security/ comes last (it hands every object
-- over and grants the functions by name).

-- schema/: the schema, its version, the clock, the shared argument checks
\ir schema/schema.sql
\ir schema/version.sql
\ir schema/clock.sql
\ir schema/checks.sql

-- tables/: tables and indexes
\ir tables/workflows.sql
\ir tables/runs.sql
\ir tables/messages.sql
\ir tables/steps.sql
\ir tables/channel_key.sql
\ir tables/waits.sql
\ir tables/flow.sql
\ir tables/schedules.sql
\ir tables/retention.sql

-- workflows/: workflow definitions and retry policies
\ir workflows/retry_policy.sql
\ir workflows/limits.sql
\ir workflows/create_workflow.sql

-- queue/: queues: triggering, delivering (dequeue), archiving
\ir queue/channel.sql
\ir queue/trigger.sql
\ir queue/trigger_batch.sql
\ir queue/journal.sql
\ir queue/dequeue.sql
\ir queue/lost_lease.sql
\ir queue/archive.sql

-- workers/: workers: registration and heartbeat
\ir workers/register_worker.sql
\ir workers/heartbeat.sql

-- leases/: the lease every worker write carries
\ir leases/lease.sql
\ir leases/release_worker.sql

-- runs/: run transitions and reading runs
\ir runs/lock_run.sql
\ir runs/notify_finished.sql
\ir runs/resume_run.sql
\ir runs/finish_run.sql
\ir runs/retry_run.sql
\ir runs/run_status.sql
\ir runs/release_run.sql
\ir runs/cancel_run.sql
\ir runs/fork_run.sql
\ir runs/set_run_version.sql
\ir runs/lease_run.sql

-- steps/: the step protocol
\ir steps/attempts.sql
\ir steps/kinds.sql
\ir steps/acquire_step.sql
\ir steps/complete_step.sql
\ir steps/fail_step.sql
\ir steps/pause_step.sql
\ir steps/update_step.sql

-- waits/: durable waits: sleep, events, messages to a run
\ir waits/wait.sql
\ir waits/sleep_step.sql
\ir waits/events.sql
\ir waits/messages.sql
\ir waits/children.sql

-- schedules/: cron expressions, schedules and firing them
\ir schedules/cron.sql
\ir schedules/schedules.sql
\ir schedules/fire.sql

-- retention/: purging finished runs, per workflow retention
\ir retention/partitions.sql
\ir retention/drop_partitions.sql
\ir retention/purge.sql

-- ops/: views for operators
\ir ops/views.sql
\ir ops/dashboard.sql
\ir ops/records.sql

-- security/: roles, ownership and privileges (last)
\ir security/roles.sql
\ir security/ownership.sql
\ir security/privileges.sql
