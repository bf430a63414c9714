"""pgqrs (this repository), agent side."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import benchwf  # noqa: E402

import pgqrs  # noqa: E402

install = benchwf.install


class Client:
    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = self.loop.run_until_complete(pgqrs.connect(dsn))
        self.wf = pgqrs.workflow(benchwf.WF)

    def trigger(self, n: int) -> int:
        return int(self.loop.run_until_complete(self.wf.trigger({"n": n}).execute(self.store)))

    def close(self) -> None:
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


def worker(dsn: str, idx: int, wait_go) -> None:
    async def main() -> None:
        store = await pgqrs.connect(dsn)
        consumer = await (pgqrs.consumer(f"peer-{idx}", None, benchwf.WF).handler(benchwf.bench_wf)
                          .create(store))
        wait_go()
        await consumer.poll_forever()

    asyncio.run(main())
