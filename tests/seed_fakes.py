"""The fakes and harness of the seed tests (tests/test_seeds.py): the user's helpers the samples call (s3,
download_all, zip, is_transient, transform_logic, save_to_db, send_email, process; fetch_from_api reads the
test's database clock and stays with the samples), which record their calls in CALLS, and the harness that
runs a sample (an in-process worker, waiting for a status, the printed message ids).
"""

import asyncio
import re
from contextlib import asynccontextmanager
from typing import Any

import pytest

import pgqrs
from pgqrs import Step, StepStatus, TransientError, connect, run, step, workflow  # noqa: F401 (seed imports)

CALLS: list[tuple[Any, ...]] = []  # what the fake helpers were asked to do, in order


def calls(name: str) -> list[tuple[Any, ...]]:
    return [c for c in CALLS if c[0] == name]


# ---- the user's helpers (fakes) ----------------------------------------------------------------------------


class _S3:
    async def list_objects(self, bucket: str, prefix: str) -> list[str]:
        CALLS.append(("list_objects", bucket, prefix))
        return [f"{prefix}a.txt", f"{prefix}b.txt", f"{prefix}c.txt"]


s3 = _S3()


async def download_all(files: list[str]) -> list[str]:
    CALLS.append(("download_all", files))
    return ["/tmp/dl/" + f.replace("/", "_") for f in files]


class _Zip:
    async def create(self, files: list[str]) -> str:
        CALLS.append(("zip.create", files))
        return f"/tmp/archive-{len(files)}.zip"


zip = _Zip()  # shadows the builtin in this module, as the seed's `zip.create` does


class FlakyNetwork(Exception):
    pass


def is_transient(e: Exception) -> bool:
    return isinstance(e, FlakyNetwork)


def transform_logic(data: list[dict[str, int]]) -> list[dict[str, int]]:
    CALLS.append(("transform_logic", len(data)))
    return [{"n": r["n"], "square": r["n"] * r["n"]} for r in data]


async def save_to_db(rows: list[dict[str, int]]) -> None:
    CALLS.append(("save_to_db", rows))


async def send_email(approver: str) -> dict[str, str]:
    CALLS.append(("send_email", approver))
    return {"sent_to": approver}


async def process(approval_data: Any) -> dict[str, Any]:
    CALLS.append(("process", approval_data))
    return {"processed": approval_data}


# ---- harness -----------------------------------------------------------------------------------------------


@asynccontextmanager
async def worker_running(store: pgqrs.Store, name: str, queue: str, handler: Any, **opts: Any):
    """An in-process worker (the `.handler(...)` form) polling while the block runs."""
    builder = pgqrs.consumer(name, 8080, queue).handler(handler)
    for key, value in opts.items():
        builder = getattr(builder, key)(value)
    worker = await builder.create(store)
    task = asyncio.create_task(worker.poll_forever())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def wait_status(store: pgqrs.Store, run_id: int, status: str, timeout: float = 20) -> pgqrs.RunInfo:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        info = await pgqrs.run().status(run_id).store(store).get()
        if info.status == status:
            return info
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} is {info.status}, not {status}"
        await asyncio.sleep(0.05)


def queued_ids(capsys: pytest.CaptureFixture[str]) -> list[int]:
    return [int(m) for m in re.findall(r"Queued message: (\d+)", capsys.readouterr().out)]
