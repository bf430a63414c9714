"""Child workflows: a run starts other runs as its children (`ctx.start_child`) and waits for them
(`ctx.wait_child`, `ctx.gather`).

Run (run.py) has the two engine calls (start_child, wait_children), for the manual API too; ChildWorkflows
gives the workflow context (workflow.py) the calls a handler makes. A child is started once per step id (the
engine records it with the step), and a wait is a durable wait: the run is WAITING, holds no lease, and the
child that finishes last wakes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._params import as_id
from ._waits import DurableWaits
from .errors import ChildFailed
from .outcomes import Suspended


@dataclass(frozen=True)
class ChildHandle:
    """A child run started by `ctx.start_child`: its run id and workflow. Pass it to `ctx.wait_child` or
    `ctx.gather`; `run_id` also works with `store.result`, `store.get` and the CLI."""

    run_id: int
    workflow: str


class ChildWorkflows(DurableWaits):
    """`ctx.start_child`, `ctx.wait_child` and `ctx.gather` (mixed into WorkflowContext)."""

    async def start_child(self, workflow: str, input: Any = None, step_id: str | None = None) -> ChildHandle:
        """Start a run of `workflow` with `input` as a child of this run, as step `step_id` (default
        "start_child", "start_child#2", ...): ``pgqrs.start_child`` records the child with the step in one
        transaction, so each step id starts one child, however often the run is replayed or its worker
        crashes. A replay whose journal holds the step answers from it, without a round trip. Returns a
        ChildHandle.
        Raises StepKindConflict (QR010), UnknownWorkflow (QR001), InvalidArgument (22023), NotSerializable,
        DuplicateStepId, ReplayDrift and the lease errors."""
        step_id = await self._claim(step_id, "start_child")
        found, recorded = self._journal_outcome(step_id, "child")  # {"run_id": ..., "workflow": ...}
        if found:
            return ChildHandle(int(recorded["run_id"]), str(recorded["workflow"]))
        return ChildHandle(await self.run.start_child(step_id, workflow, input), workflow)

    async def wait_child(self, child: ChildHandle | int, step_id: str | None = None) -> Any:
        """Wait for one child run (a ChildHandle or its run id) to finish, as step `step_id` (default
        "wait_child", "wait_child#2", ...), through ``pgqrs.wait_children``. Returns its output; raises
        ChildFailed (with the child's status and error) when it ended ERROR or CANCELLED. While the child runs
        the run is WAITING, holds no lease, and the handler unwinds (Suspended) until the child's finish wakes
        it; the replay then returns the recorded outcome. Raises NotAChild (QR011: not started by this run),
        StepKindConflict (QR010), DuplicateStepId, ReplayDrift and the lease errors."""
        (output,) = await self._wait_children(await self._claim(step_id, "wait_child"), [child], False)
        return output

    async def gather(self, *children: ChildHandle | int, step_id: str | None = None,
                     return_exceptions: bool = False) -> list[Any]:
        """Wait for all the given child runs to finish, as one step `step_id` (default "gather", "gather#2",
        ...), through ``pgqrs.wait_children``: the run is WAITING (no lease held) until the last of them
        finishes, which wakes it. Returns their outputs in the order given. A child that ended ERROR or
        CANCELLED raises ChildFailed (the first such in that order), or with `return_exceptions` stands in the
        list as its ChildFailed. No children: [] at once. Raises NotAChild (QR011), StepKindConflict (QR010),
        InvalidArgument (over 100,000 children), DuplicateStepId, ReplayDrift and the lease errors."""
        if not children:
            return []
        step_id = await self._claim(step_id, "gather")
        return await self._wait_children(step_id, list(children), return_exceptions)

    async def _wait_children(self, step_id: str, children: list[ChildHandle | int],
                             return_exceptions: bool) -> list[Any]:
        ids = [as_id(c) for c in children]
        found, recorded = self._journal_outcome(step_id, "children")  # {"children": [...], "outcomes": [...]}
        if found and recorded.get("children") == ids:
            outcomes = recorded["outcomes"]
        else:  # not recorded yet, or other children asked for (the engine raises StepKindConflict)
            status, outcomes = await self.run.wait_children(step_id, ids)
            if status != "DONE":
                raise Suspended("WAITING")
        outcomes = await self._recorded(step_id, outcomes)
        results: list[Any] = []
        for outcome in outcomes:
            if outcome["status"] == "SUCCESS":
                results.append(outcome["output"])
                continue
            failed = ChildFailed(int(outcome["run_id"]), str(outcome["status"]), outcome["error"])
            if not return_exceptions:
                raise failed
            results.append(failed)
        return results
