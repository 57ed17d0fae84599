"""Micro-batching: concurrent requests are grouped so they share one encoder forward and one index search.

Requests queue up while the model works; when it is free, the worker takes everything queued (up to
`max_batch`) and runs the batch on a single model thread. Under load batches grow by themselves. After a
batch of more than one request (concurrent clients), the worker also waits up to `window_s` after the first
item for more to arrive; after a batch of one it does not, so a lone client never pays for the window
(measured on serve.py at concurrency 1: 2 ms of window cost 11-15% of QPS; at concurrency 16 batches were
as large without it). `max_batch=1` serves one request at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Batched(Generic[Out]):
    """One item's result, with the size of the batch it ran in and how long it queued."""

    value: Out
    batch_size: int
    queue_s: float


class MicroBatcher(Generic[In, Out]):
    """Runs `fn(list of items) -> list of results` on batches of items submitted concurrently."""

    def __init__(
        self,
        fn: Callable[[list[In]], list[Out]],
        max_batch: int = 16,
        window_s: float = 0.002,
        model_thread: ThreadPoolExecutor | None = None,
    ):
        """`model_thread`: a one-thread executor shared with other batchers (so that all model work runs
        on one thread, one batch after another); default: the batcher's own, shut down by `stop`."""
        if max_batch < 1:
            raise ValueError(f"max_batch={max_batch}: need at least 1")
        if window_s < 0:
            raise ValueError(f"window_s={window_s}: need >= 0")
        self.fn, self.max_batch, self.window_s = fn, max_batch, window_s
        self._queue: asyncio.Queue[tuple[In, asyncio.Future, float]] | None = None
        self._worker: asyncio.Task | None = None
        self._concurrent = False  # whether the last batch had more than one request
        self._owns_thread = model_thread is None
        self._executor = model_thread or ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail with CancelledError."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while self._queue is not None and not self._queue.empty():
            self._queue.get_nowait()[1].cancel()
        if self._owns_thread:
            self._executor.shutdown(wait=True)

    async def submit(self, item: In) -> Batched[Out]:
        """Queue `item` and wait for its result (exceptions of `fn` are raised here)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.submit before start")
        future: asyncio.Future[Batched[Out]] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future, time.perf_counter()))
        return await future

    async def run_on_model_thread(self, fn: Callable[..., Out], *args: object) -> Out:
        """Run `fn(*args)` on the model thread, between batches (for work that is not batched)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _collect(self) -> list[tuple[In, asyncio.Future, float]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + (self.window_s if self._concurrent else 0.0)
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            getter = asyncio.ensure_future(self._queue.get())
            await asyncio.wait({getter}, timeout=remaining)
            if not getter.done():
                getter.cancel()  # a get cancelled before it returned leaves its item in the queue
                break
            batch.append(getter.result())
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [(item, future, queued) for item, future, queued in batch if not future.cancelled()]
            if not live:
                continue
            self._concurrent = len(live) > 1
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.fn, [item for item, _, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(
                        f"batch function returned {len(results)} results for {len(live)} items"
                    )
            except Exception as error:  # every request of the batch learns what went wrong
                for _, future, _ in live:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future, queued), value in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(Batched(value, len(live), started - queued))
