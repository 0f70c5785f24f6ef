"""Micro-batching: items of concurrent requests that arrive within a few milliseconds share
one forward pass; bounded pending work answers "busy" instead of queueing without end.

Each task has a queue and a collector coroutine: it takes the first waiting item, then
waits up to ``max_wait_ms`` (or until ``max_batch`` items) for more, and runs the batch on
the model thread. One model thread serves every task: the model is used by one batch at
a time, and switching model versions between batches is a plain reference swap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """Too much pending work: answer 503 with ``Retry-After``."""

    def __init__(self, pending: int, limit: int, retry_after: int) -> None:
        super().__init__(f"server busy: {pending} items pending (limit {limit}); retry later")
        self.retry_after = retry_after


@dataclass
class _Entry:
    item: Any
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """``await batcher.submit(task, items)`` -> one output per item, computed in batches.

    ``run_batch(task, items) -> outputs`` runs on the single model thread.
    ``on_batch(task, size)`` (optional) is told the size of every batch run.
    """

    def __init__(self, run_batch: Callable[[str, list], list], *, max_batch: int = 16,
                 max_wait_ms: float = 5.0, max_pending: int = 256,
                 on_batch: Callable[[str, int], None] | None = None) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.max_pending = max_pending
        self.on_batch = on_batch
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._queues: dict[str, asyncio.Queue] = {}
        self._workers: list[asyncio.Task] = []
        self._last_batch_s = 0.05  # for Retry-After: a recent batch's duration

    def retry_after(self) -> int:
        """Seconds until the current backlog is likely done (at least 1)."""
        batches = max(1, -(-self.pending // max(1, self.max_batch)))
        return max(1, int(round(batches * self._last_batch_s)))

    async def submit(self, task: str, items: list) -> list:
        if not items:
            return []
        if self.pending + len(items) > self.max_pending:
            raise Overloaded(self.pending, self.max_pending, self.retry_after())
        queue = self._queue(task)
        loop = asyncio.get_running_loop()
        entries = [_Entry(it, loop.create_future()) for it in items]
        self.pending += len(entries)
        for e in entries:
            queue.put_nowait(e)
        return list(await asyncio.gather(*(e.future for e in entries)))

    def _queue(self, task: str) -> asyncio.Queue:
        q = self._queues.get(task)
        if q is None:
            q = self._queues[task] = asyncio.Queue()
            self._workers.append(asyncio.get_running_loop().create_task(self._collect(task, q)))
        return q

    async def _collect(self, task: str, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    # take what is already queued without waiting
                    if queue.empty():
                        break
                    batch.append(queue.get_nowait())
                    continue
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            live = [e for e in batch if not e.future.cancelled()]
            start = time.perf_counter()
            try:
                if live:
                    outs = await loop.run_in_executor(self.executor, self.run_batch, task,
                                                      [e.item for e in live])
                    for e, o in zip(live, outs, strict=True):
                        if not e.future.done():
                            e.future.set_result(o)
                    if self.on_batch is not None:
                        self.on_batch(task, len(live))
            except Exception as exc:  # a bug in the model code: every waiter gets it
                for e in live:
                    if not e.future.done():
                        e.future.set_exception(exc)
            finally:
                self.pending -= len(batch)
                if live:
                    self._last_batch_s = 0.8 * self._last_batch_s + 0.2 * (
                        time.perf_counter() - start)

    async def close(self) -> None:
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            try:
                await w
            except (asyncio.CancelledError, Exception):
                pass
        self._workers.clear()
        self._queues.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
