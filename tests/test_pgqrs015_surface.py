"""The pgqrs 0.15 names next to ours (issue 21): the ones exported, the ones with two meanings and how each is
resolved (docs/migrating-from-pgqrs.md, "Names with two meanings"), the status enums, the error aliases, and
0.15's count of attempts."""

import asyncio
import inspect
import uuid
from typing import Any

import pytest

import pgqrs
import pgqrs.sync
from pgqrs import decorators
from pgqrs.records import TriggerHandle

DIALECT = ["Admin", "BackoffStrategy", "Config", "ConfigError", "DequeueBuilder", "MessageNotFoundError",
           "PausedError", "QueueNotFoundError", "RetriesExhaustedError", "SerializationError",
           "StateTransitionError", "StepNotReadyError", "StepResultStatus", "StepRetryPolicy",
           "TransientStepError", "ValidationError", "WorkerInterrupted", "WorkerNotFoundError",
           "WorkflowStatus", "admin", "connect_with", "dequeue", "decorators"]


def test_the_015_names_are_attributes_of_pgqrs_outside_all_and_not_in_sync() -> None:
    for name in DIALECT:
        assert hasattr(pgqrs, name), name
        assert name not in pgqrs.__all__, name
        assert not hasattr(pgqrs.sync, name), f"pgqrs.sync.{name}: the 0.15 dialect is async only"
    assert not set(DIALECT) & set(pgqrs.__all__)  # none replaces one of ours


def test_error_aliases_are_our_classes() -> None:
    assert pgqrs.ValidationError is pgqrs.InvalidArgument
    assert pgqrs.StateTransitionError is pgqrs.InvalidState
    assert pgqrs.RetriesExhaustedError is pgqrs.AttemptsExhausted
    assert pgqrs.QueueNotFoundError is pgqrs.UnknownWorkflow
    assert pgqrs.WorkerNotFoundError is pgqrs.UnknownWorker
    assert pgqrs.MessageNotFoundError is pgqrs.UnknownRun
    for cls in (pgqrs.TransientStepError, pgqrs.StepNotReadyError, pgqrs.PausedError, pgqrs.ConfigError,
                pgqrs.WorkerInterrupted):
        assert issubclass(cls, pgqrs.PgqrsError), cls
    err = pgqrs.TransientStepError("slow")
    assert isinstance(err, pgqrs.TransientError)  # our ctx.step treats it as transient too
    assert (str(err), err.code, err.retry_after) == ("slow", "TRANSIENT_ERROR", None)


def test_status_enums_equal_our_strings_under_both_spellings() -> None:
    assert pgqrs.WorkflowStatus.Success is pgqrs.WorkflowStatus.SUCCESS == "SUCCESS"
    assert [s.value for s in pgqrs.WorkflowStatus] == list(pgqrs.RunStatus)
    assert pgqrs.StepResultStatus.Execute == "EXECUTE" and pgqrs.StepResultStatus.Skipped == "SKIPPED"
    assert [s.value for s in pgqrs.StepResultStatus] == list(pgqrs.StepAnswer)


def test_run_id_is_a_property_and_a_method() -> None:
    run = pgqrs.Run(None, pgqrs.Message(42, 42, {}, 1, uuid.uuid4()), None)  # type: ignore[arg-type]
    assert run.id == 42 and run.id() == 42 and isinstance(run.id, int)
    assert f"{run.id}" == "42"


def test_step_is_our_decorator_and_015s_builder() -> None:
    @pgqrs.step
    async def plain() -> None: ...

    @pgqrs.step(name="named")
    async def other() -> None: ...

    @pgqrs.step()
    async def bare() -> None: ...

    for fn in (plain, other, bare):
        assert inspect.iscoroutinefunction(fn)
    builder = pgqrs.step()
    assert builder.name("s").id("s2") is builder
    with pytest.raises(ValueError, match="needs .run"):
        asyncio.run(pgqrs.step().name("s").execute())
    assert decorators.step is not pgqrs.step and decorators.workflow is not pgqrs.workflow


def test_decorators_workflow_checks_its_name() -> None:
    with pytest.raises(TypeError):
        decorators.workflow(name=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        decorators.workflow(name="")


def test_trigger_handle_reads_as_a_message() -> None:
    handle = TriggerHandle(7, True, {"a": 1}, "wf")
    assert (handle.id, int(handle), handle.payload, handle.queue_id) == (7, 7, {"a": 1}, "wf")
    assert handle.created is True


def test_step_retry_policy_counts_retries() -> None:
    policy = pgqrs.StepRetryPolicy()
    assert policy.max_attempts == 3 and policy["max_attempts"] == 4  # 3 retries = 4 executions
    assert policy["backoff"] == "exponential" and policy["jitter"] == 0.25
    fixed = pgqrs.StepRetryPolicy(max_attempts=0, backoff=pgqrs.BackoffStrategy.fixed(2))
    assert dict(fixed) == {"max_attempts": 1, "backoff": "fixed", "base_seconds": 2, "max_seconds": 2,
                           "jitter": 0}


def test_a_015_policy_executes_a_step_retries_plus_one_times(db: str) -> None:
    """StepRetryPolicy(max_attempts=1): one retry, two executions, then the run ends ERROR (0.15's count)."""

    async def main() -> Any:
        store = await pgqrs.connect(db)
        try:
            await store.create_workflow("counted", pgqrs.StepRetryPolicy(max_attempts=1))
            run = await pgqrs.admin(store).create_workflow("counted", {})
            executions = 0
            for _ in range(5):
                try:
                    await run.start()
                except pgqrs.StateTransitionError:
                    break
                step = await run.acquire_step("call")
                executions += 1
                await step.guard.fail_transient("TIMEOUT", "slow", retry_after=0)
            info = await pgqrs.run().status(run).store(store).get()
            return executions, info.status
        finally:
            await store.close()

    assert asyncio.run(main()) == (2, "ERROR")
