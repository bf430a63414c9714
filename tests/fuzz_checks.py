"""What the fuzz tests (tests/test_fuzz_*.py) accept and check, shared by all of them.

- FUZZ: the hypothesis settings (MAX_EXAMPLES examples per property, PGQRS_FUZZ_EXAMPLES; reproducible in CI);
- `allowed`: every call either succeeds or fails with a SQLSTATE in ALLOWED_SQLSTATES;
- `consistency_problems`: after every example the database has no message, step, wait, sent message,
  idempotency key, parent or origin of a fork without its run and no run without its workflow (no foreign key
  points at runs since schema version 8, nor leaves the hot tables since version 6, nor runs.workflow_id since
  version 8: this is their check), no finished run with a live message or lease, attempts within policy,
  messages and archive disjoint, ... and no step SUCCESS seen so far (the `Shadow`) changed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import psycopg
from hypothesis import HealthCheck, settings

from pgqrs.errors import REGISTRY

MAX_EXAMPLES = int(os.environ.get("PGQRS_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() not in ("", "0", "false", "no"),  # reproducible in CI
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- what may come back -----------------------------------------------------------------------------------

# every code the engine raises (pgqrs.errors.REGISTRY: QR001 unknown workflow ... and 22023 for a malformed
# argument caught by the engine's own checks), each named by the first line of its exception's docstring
ENGINE_SQLSTATES = {code: (cls.__doc__ or cls.__name__).splitlines()[0] for code, cls in REGISTRY.items()}
# PostgreSQL's own codes for malformed *literal input*: raised while PostgreSQL converts a parameter to the
# declared type (or does arithmetic the input makes impossible), before or instead of any pgqrs logic. pgqrs
# passes them through unchanged (docs/errors.md). Each one is listed with the input that produces it here.
POSTGRES_INPUT_SQLSTATES = {
    "22P02": "invalid_text_representation: text that is not JSON, a uuid, an integer or a boolean",
    "22P05": "untranslatable_character: \\u0000 in JSON text (jsonb cannot store NUL)",
    "22003": "numeric_value_out_of_range: an integer beyond the parameter's type (batch size 2^40)",
    "22007": "invalid_datetime_format: malformed timestamp or interval text ('garbage', 'infinity' interval)",
    "22008": "datetime_field_overflow: a timestamp or interval outside PostgreSQL's range (year 294277)",
    "22015": "interval_field_overflow: an interval field beyond int32 ('99999999999 days')",
    "54001": "statement_too_complex: 'stack depth limit exceeded' parsing JSON nested ~100k deep",
}
ALLOWED_SQLSTATES = set(ENGINE_SQLSTATES) | set(POSTGRES_INPUT_SQLSTATES)
# Not allowed, on purpose: 42883 (a call the package builds with the wrong types), 23xxx (a constraint the
# engine should have checked first), P0002/P0003 (SELECT INTO STRICT surprises), 22012, XX000, 42501 (the
# fuzzing runs as a superuser; privileges are tests/test_security.py's).

Conn = psycopg.Connection[tuple[Any, ...]]


def allowed(exc: psycopg.Error, context: str) -> str:
    """The SQLSTATE of `exc`, after asserting it is allowed. psycopg refuses text with NUL client-side.

    PostgreSQL's input codes count only where PostgreSQL converts the call's own arguments (binding a
    parameter, or the caller's expression such as `%s * interval '1 second'`). Raised from inside a pgqrs
    function they mean the engine accepted an input and then choked on it: a bug, whatever the code."""
    if exc.sqlstate is None and isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
        return "NUL"
    assert exc.sqlstate in ALLOWED_SQLSTATES, (
        f"{context}: unexpected {exc.sqlstate} {type(exc).__name__}: {exc}"
    )
    if exc.sqlstate in POSTGRES_INPUT_SQLSTATES:
        where = exc.diag.context or ""
        assert not re.search(r"(PL/pgSQL|SQL) function ", where), (
            f"{context}: {exc.sqlstate} raised inside the engine, not while reading the arguments: "
            f"{exc.diag.message_primary} / {where}"
        )
    return str(exc.sqlstate)


# --- the consistency check --------------------------------------------------------------------------------

CONSISTENCY_SQL = """
with r as (
    select r.*, w.name as workflow, q.queue_id as run_queue_id
    from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)
    join pgqrs.queues as q using (workflow_id)
    where w.name like %(prefix)s
)
select 'message without its run: ' || m.message_id from pgqrs.messages as m
where not exists (select from pgqrs.runs as x where x.run_id = m.message_id)
union all
select 'archived message without its run: ' || a.message_id from pgqrs.messages_archive as a
where not exists (select from pgqrs.runs as x where x.run_id = a.message_id)
union all
select format('step %%s/%%s without its run', s.run_id, s.step_id) from pgqrs.steps as s
where not exists (select from pgqrs.runs as x where x.run_id = s.run_id)
union all
select format('run %%s of workflow %%s, which does not exist', x.run_id, x.workflow_id) from pgqrs.runs as x
where not exists (select from pgqrs.workflows as w where w.workflow_id = x.workflow_id)
union all
select format('run %%s: its parent %%s does not exist', c.run_id, c.parent_run_id) from pgqrs.runs as c
where c.parent_run_id is not null
  and not exists (select from pgqrs.runs as x where x.run_id = c.parent_run_id)
union all
select format('run %%s: forked from %%s, which does not exist', f.run_id, f.forked_from) from pgqrs.runs as f
where f.forked_from is not null and not exists (select from pgqrs.runs as x where x.run_id = f.forked_from)
union all
select 'wait without its run: ' || w.run_id from pgqrs.waits as w
where not exists (select from pgqrs.runs as x where x.run_id = w.run_id)
union all
select format('message %%s sent to run %%s, which does not exist', m.message_id, m.run_id)
from pgqrs.run_messages as m where not exists (select from pgqrs.runs as x where x.run_id = m.run_id)
union all
select format('idempotency key %%s of run %%s, which does not exist', k.idempotency_key, k.run_id)
from pgqrs.idempotency_keys as k where not exists (select from pgqrs.runs as x where x.run_id = k.run_id)
union all
select format('message %%s in queue %%s, which does not exist', m.message_id, m.queue_id)
from pgqrs.messages as m where not exists (select from pgqrs.queues as q where q.queue_id = m.queue_id)
union all
select 'message both live and archived: ' || m.message_id
from pgqrs.messages as m join pgqrs.messages_archive as a using (message_id)
union all
select format('finished run %%s (%%s) has a live message (lease %%s)', r.run_id, r.status, m.lease_token)
from r join pgqrs.messages as m on m.message_id = r.run_id where r.status in ('SUCCESS', 'ERROR', 'CANCELLED')
union all
select format('finished run %%s (%%s) is not archived', r.run_id, r.status) from r
where r.status in ('SUCCESS', 'ERROR')
  and not exists (select from pgqrs.messages_archive as a where a.message_id = r.run_id)
union all
select format('run %%s is %%s but archived as %%s', r.run_id, r.status, a.outcome)
from r join pgqrs.messages_archive as a on a.message_id = r.run_id
where (r.status = 'SUCCESS') <> (a.outcome = 'SUCCESS') or (r.status = 'ERROR') <> (a.outcome = 'DEAD_LETTER')
union all
select format('live run %%s (%%s) has no message', r.run_id, r.status) from r
where r.status in ('QUEUED', 'RUNNING', 'PAUSED')
  and not exists (select from pgqrs.messages as m where m.message_id = r.run_id)
union all
select format('run %%s is %%s with lease token %%s', r.run_id, r.status, m.lease_token)
from r join pgqrs.messages as m on m.message_id = r.run_id
where (r.status = 'RUNNING') <> (m.lease_token is not null)
union all
select format('message %%s is in queue %%s, its run''s queue is %%s', r.run_id, m.queue_id, r.run_queue_id)
from r join pgqrs.messages as m on m.message_id = r.run_id where m.queue_id <> r.run_queue_id
union all
select format('run %%s: attempt %%s but %%s deliveries', r.run_id, r.attempt, d.read_count)
from r join (
    select message_id, read_count from pgqrs.messages
    union all select message_id, read_count from pgqrs.messages_archive
) as d on d.message_id = r.run_id
where r.attempt <> d.read_count
union all
select format('run %%s (%%s): finished_at %%s', r.run_id, r.status, r.finished_at) from r
where (r.status in ('SUCCESS', 'ERROR', 'CANCELLED')) <> (r.finished_at is not null)
union all
select format('run %%s: SUCCESS without output / ERROR without error', r.run_id) from r
where (r.status = 'SUCCESS' and r.output is null) or (r.status = 'ERROR' and r.error is null)
union all
select format('step %%s/%%s: %%s with value %%s, attempt %%s, retry_at %%s, paused_until %%s',
              s.run_id, s.step_id, s.status, s.value, s.attempt, s.retry_at, s.paused_until)
from r join pgqrs.steps as s using (run_id)
where (s.status = 'SUCCESS' and s.value is null) or s.attempt < 0
   or (s.retry_at is not null and s.status <> 'ERROR')
   or (s.paused_until is not null and s.status <> 'PAUSED')
"""

RETRIES_SQL = """
select s.run_id, s.step_id, s.attempt, w.name, (w.retry_policy ->> 'max_attempts')::numeric
from pgqrs.steps as s join pgqrs.runs as r using (run_id) join pgqrs.workflows as w using (workflow_id)
where w.name like %(prefix)s and s.status = 'ERROR' and s.retry_at is not null
  and r.status in ('QUEUED', 'RUNNING', 'PAUSED')
"""

SUCCESS_SQL = """
select s.run_id, s.step_id, s.value from pgqrs.steps as s join pgqrs.runs as r using (run_id)
join pgqrs.workflows as w using (workflow_id) where w.name like %(prefix)s and s.status = 'SUCCESS'
"""


@dataclass
class Shadow:
    """What the fuzzer has seen: step successes (never to change) and the largest max_attempts any policy
    for a workflow or a (run, step) had (create_workflow may lower a policy later; attempts made under the
    old one stay legal)."""

    success: dict[tuple[int, str], Any] = field(default_factory=dict)
    wf_max: dict[str, float] = field(default_factory=dict)
    step_max: dict[tuple[int, str], float] = field(default_factory=dict)
    succeeded_runs: set[int] = field(default_factory=set)

    def note_policy(self, key: Any, policy: Any, table: dict[Any, float]) -> None:
        if isinstance(policy, dict) and isinstance(policy.get("max_attempts"), int | float):
            table[key] = max(table.get(key, 0), float(policy["max_attempts"]))


def consistency_problems(conn: Conn, shadow: Shadow, prefix: str = "%") -> list[str]:
    problems = [r[0] for r in conn.execute(CONSISTENCY_SQL, {"prefix": prefix})]
    for run_id, step_id, attempt, wf, wf_max in conn.execute(RETRIES_SQL, {"prefix": prefix}):
        limit = max(float(wf_max), shadow.wf_max.get(wf, 0), shadow.step_max.get((run_id, step_id), 0))
        if attempt >= limit:
            problems.append(
                f"step {run_id}/{step_id} has a retry scheduled after attempt {attempt} of {limit}"
            )
    now = {(r, s): v for r, s, v in conn.execute(SUCCESS_SQL, {"prefix": prefix})}
    purged = {r for (r,) in conn.execute(
        "select s.run_id from unnest(%s::bigint[]) as s (run_id)"
        " where not exists (select from pgqrs.runs as r where r.run_id = s.run_id)",
        (sorted({run for run, _step in shadow.success} | shadow.succeeded_runs),),
    )}  # removed whole by pgqrs.purge_runs: nothing of theirs is left to compare
    for key, value in shadow.success.items():
        if key[0] in purged:
            continue
        if key in now and now[key] != value:
            problems.append(f"step {key} SUCCESS changed from {value!r} to {now[key]!r}")
        elif key not in now:
            row = conn.execute(
                "select status from pgqrs.steps where run_id = %s and step_id = %s", key
            ).fetchone()
            problems.append(f"step {key} was SUCCESS {value!r}, now {row}")
    shadow.success.update(now)
    if shadow.succeeded_runs:
        for run_id, status in conn.execute(
            "select run_id, status from pgqrs.runs where run_id = any(%s)", (sorted(shadow.succeeded_runs),)
        ):
            if status != "SUCCESS":
                problems.append(f"run {run_id} was SUCCESS, now {status}")
    shadow.succeeded_runs.update(
        r[0]
        for r in conn.execute(
            "select r.run_id from pgqrs.runs as r join pgqrs.workflows as w using (workflow_id)"
            " where w.name like %(prefix)s and r.status = 'SUCCESS'",
            {"prefix": prefix},
        )
    )
    return problems
