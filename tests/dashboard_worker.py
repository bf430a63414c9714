"""The workflow that the dashboard's browser tests and `make screenshots` run in a real worker:

    cd tests && python -m pgqrs worker dashboard_worker:invoices

`invoices` loads the lines of an invoice and charges it. With "needs": PATH in the input, the charge fails for
good (a RuntimeError: a dead letter) while PATH does not exist: creating the file is the operator's fix, and a
retry from the dashboard then succeeds. "pause": true pauses at an approval step (update_step + resume), and
"sleep": seconds makes the run wait durably before it charges; "flaky": PATH makes the charge fail once
with a transient error (a retry after 0.05 s), creating PATH.
"""

from __future__ import annotations

import os
from typing import Any

from pgqrs import Step, TransientError, workflow


@workflow(name="invoices")
async def invoices(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    async def load() -> dict[str, Any]:
        return {"lines": [{"sku": f"sku-{i}", "qty": i, "note": params.get("note", "")} for i in range(3)]}

    lines = await ctx.step("load", load)
    if params.get("pause"):
        async def approve() -> Any:
            raise Step.pause()

        await ctx.step("approve", approve)
    if params.get("sleep"):
        await ctx.sleep(float(params["sleep"]), step_id="cool_down")

    async def charge() -> dict[str, Any]:
        flaky, needs = params.get("flaky"), params.get("needs")
        if flaky and not os.path.exists(flaky):
            open(flaky, "w").close()
            raise TransientError("gateway timeout", retry_after=0.05)
        if needs and not os.path.exists(needs):
            raise RuntimeError(f"card declined: {needs} is missing")
        return {"charged": sum(line["qty"] for line in lines["lines"])}

    return await ctx.step("charge", charge)  # type: ignore[no-any-return]

