"""Batches of an upload handled in order on a thread of their own while the event loop
receives the next ones.

Hashing and writing an upload's bytes release the GIL, so they can run beside the receiving
on other cores instead of in turn with it. Handing a batch over is a ``SimpleQueue.put``; the
thread wakes the event loop only when the loop waits for room or for the end, not once per
batch as a ``to_thread`` call does (anyio's per-call bookkeeping was a quarter of the event
loop's Python time in a profile of a 64 MB upload). Memory stays bounded: at most ``depth``
batches wait for the thread or are being handled.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

Batch = Sequence[Any]


class WriterThread:
    """Runs ``write(batch)`` for each batch :meth:`put`, in order, on a thread of its own.

    After the last batch, unless stopped or failed, the thread runs ``finish()`` before
    :meth:`close` returns. The first error stops the writing: later batches are dropped, and
    :meth:`put` and :meth:`close` raise it. Call :meth:`close` (or, on the error path,
    :meth:`stop`) once the last batch is in; either returns only when the thread is done with
    ``write``'s target.
    """

    def __init__(
        self,
        write: Callable[[Batch], None],
        depth: int,
        name: str,
        finish: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._finish = finish
        self._depth = depth
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._queued = 0  # batches put and not yet written (guarded by _lock)
        self._room: asyncio.Future[None] | None = None  # the loop waits for a free slot
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self.error: BaseException | None = None
        self._closed = False
        self._dropping = False  # stop(): queued batches are not written
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- event loop side ---------------------------------------------------------------------

    async def put(self, batch: Batch) -> None:
        """Queue ``batch``; waits while ``depth`` batches are queued already."""
        while True:
            self._raise_error()
            with self._lock:
                if self._queued < self._depth:
                    self._queued += 1
                    break
                self._room = self._loop.create_future()
                room = self._room
            await room
        self._queue.put(batch)

    async def close(self) -> None:
        """Wait until every batch is written; raises the first error."""
        await self._end()
        self._raise_error()

    async def stop(self) -> None:
        """End the thread, dropping what is still queued, and wait for it; never raises what
        ``write`` raised. Safe to call more than once, and after :meth:`close`."""
        self._dropping = True
        await self._end()

    def end_input(self) -> None:
        """Say no batch follows, without waiting: several threads can then finish at once
        before each :meth:`close`."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)

    async def _end(self) -> None:
        self.end_input()
        await asyncio.shield(self._finished)

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    # -- writer thread side ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (batch := self._queue.get()) is not None:
                if self.error is None and not self._dropping:
                    try:
                        self._write(batch)
                    except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                        self.error = exc
                with self._lock:
                    self._queued -= 1
                    room, self._room = self._room, None
                if room is not None:
                    self._wake(room)
            if self._finish is not None and self.error is None and not self._dropping:
                try:
                    self._finish()
                except BaseException as exc:  # noqa: BLE001 - handed to the event loop
                    self.error = exc
        finally:
            self._wake(self._finished)

    def _wake(self, fut: asyncio.Future[None]) -> None:
        try:
            self._loop.call_soon_threadsafe(_resolve, fut)
        except RuntimeError:  # the loop is closed (the server stopped): nobody waits
            pass


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
