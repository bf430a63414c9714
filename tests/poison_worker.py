"""A real worker process for tests/test_poison.py: values one side of the JSON boundary refuses.

    python tests/poison_worker.py DSN NAME [--sync] [--visibility S] [--concurrency N]

It serves the workflow `poison` (the async flavour, or pgqrs.sync with --sync). The run's input names the case
(`{"case": "..."}`, see STEP_BODIES); a run whose input Python cannot read never gets that far. Prints
"ready <worker id>" once registered.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
from typing import Any

import psycopg

import pgqrs
import pgqrs.sync

DSN = ""
DEEP = "repeat('[', 2000) || repeat(']', 2000)"  # jsonb takes it; Python's json cannot read it

UNDECODABLE_NAME = os.fsdecode(b"/nonexistent/report-\xff.txt")  # a file name with a byte that is not UTF-8


def open_missing_file() -> None:
    open(UNDECODABLE_NAME)  # noqa: SIM115 -- FileNotFoundError whose message holds the lone surrogate U+DCFF


def raise_nul() -> None:
    raise RuntimeError("bad\x00byte")


# case -> the body of step 'v' (see also `body`); `outcome` adds what the handler does after it
STEP_BODIES: dict[str, Any] = {
    "ok": lambda: {"fine": True},
    "error_nul": raise_nul,
    "error_surrogate": open_missing_file,
    "handler_error_surrogate": lambda: 1,
    "step_value_nul": lambda: {"v": "a\x00b"},
    "step_key_nul": lambda: {"\x00": 1},
    "step_value_surrogate": lambda: {"path": UNDECODABLE_NAME},
    "output_nul": lambda: 1,
    "escaped_not_nul": lambda: "\\u0000 \\\\u0000",  # backslashes, then the text "u0000": no NUL
}


def record_deep_value(run_id: int) -> int:
    """Records step 'v' from outside (update_step, as a webhook would) while its body runs; then the body's
    own result conflicts and the recorded one, which Python cannot read, wins."""
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f"select pgqrs.update_step(%s, 'v', 'SUCCESS', ({DEEP})::jsonb)", (run_id,))
    return 1


def body(case: str, run_id: int) -> Any:
    return functools.partial(record_deep_value, run_id) if case == "recorded_deep" else STEP_BODIES[case]


def outcome(case: str, value: Any) -> Any:
    if case == "handler_error_surrogate":
        raise ValueError(f"cannot parse {UNDECODABLE_NAME}")  # outside any step: the run fails
    if case == "output_nul":
        return {"out": "\x00"}
    return {"v": value, "pid": os.getpid()}


async def poison(ctx: pgqrs.WorkflowContext, params: dict[str, Any]) -> Any:
    case = params.get("case", "ok")
    return outcome(case, await ctx.step("v", body(case, ctx.run_id)))


def poison_sync(ctx: pgqrs.sync.WorkflowContext, params: dict[str, Any]) -> Any:
    case = params.get("case", "ok")
    return outcome(case, ctx.step("v", body(case, ctx.run_id)))


async def main_async(args: argparse.Namespace) -> None:
    async with await pgqrs.connect(args.dsn) as store:
        builder = pgqrs.consumer(args.name, None, "poison").handler(poison)
        worker = await builder.concurrency(args.concurrency).visibility(args.visibility).create(store)
        print(f"ready {worker.id}", flush=True)
        await worker.poll_forever()


def main_sync(args: argparse.Namespace) -> None:
    with pgqrs.sync.connect(args.dsn) as store:
        builder = pgqrs.sync.consumer(args.name, None, "poison").handler(poison_sync)
        worker = builder.concurrency(args.concurrency).visibility(args.visibility).create(store)
        print(f"ready {worker.id}", flush=True)
        worker.poll_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("name")
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--visibility", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=4)
    arguments = parser.parse_args()
    DSN = arguments.dsn
    log_format = f"%(asctime)s [{arguments.name} {os.getpid()}] %(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=log_format)
    if arguments.sync:
        main_sync(arguments)
    else:
        asyncio.run(main_async(arguments))
