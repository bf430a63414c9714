"""pgqrs 0.15.3 (PyPI), agent side."""

import asyncio

from pgqrs.decorators import step, workflow

import pgqrs

WF = "bench_wf"


@step
async def step_a(ctx, n):
    return {"i": n}


@step
async def step_b(ctx, n):
    return {"i": n + 1}


@step
async def step_c(ctx, n):
    return {"i": n + 2}


@workflow(name=WF)
async def bench_wf(ctx, inp):
    n = inp["n"]
    a = await step_a(ctx, n)
    b = await step_b(ctx, n)
    c = await step_c(ctx, n)
    return {"sum": a["i"] + b["i"] + c["i"]}


def install(dsn):
    async def main():
        store = await pgqrs.connect(dsn)
        await pgqrs.admin(store).install()
        await pgqrs.workflow().name(WF).store(store).create()

    asyncio.run(main())


class Client:
    def __init__(self, dsn):
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(self._connect(dsn))

    @staticmethod
    async def _connect(dsn):
        return await pgqrs.connect(dsn)

    async def _trigger(self, n):
        msg = await pgqrs.workflow().name(WF).store(self.store).trigger({"n": n}).execute()
        return msg.id

    def trigger(self, n):
        return self.loop.run_until_complete(self._trigger(n))

    def close(self):
        self.loop.close()


def worker(dsn, idx, wait_go):
    async def main():
        store = await pgqrs.connect(dsn)
        consumer = await store.consumer(WF)
        loop = pgqrs.dequeue().worker(consumer).batch(1).handle_workflow(bench_wf)
        wait_go()
        await loop.poll(store)
        raise SystemExit("poll() returned")

    asyncio.run(main())
