"""The writer thread of an upload (api/_writer_thread.py): batches handled in order, the
queue bounded, the first error raised to the event loop and nothing handled after it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from tarndb.api._writer_thread import WriterThread


def test_batches_are_handled_in_order_and_close_waits_for_them() -> None:
    seen: list[int] = []

    def write(batch: Sequence[Any]) -> None:
        seen.extend(batch)

    async def main() -> None:
        pipe = WriterThread(write, 2, "test-writer")
        for i in range(0, 300, 3):
            await pipe.put([i, i + 1, i + 2])
        await pipe.close()
        assert seen == list(range(300))  # all of them, before close returned
        await pipe.stop()  # after close: nothing left to do, no error

    asyncio.run(main())


def test_put_waits_while_depth_batches_are_queued() -> None:
    release = threading.Event()
    started = threading.Event()

    def write(batch: Sequence[Any]) -> None:
        started.set()
        release.wait(10)

    async def main() -> None:
        pipe = WriterThread(write, 2, "test-writer")
        await pipe.put([1])  # being written (blocked)
        await pipe.put([2])  # queued: the depth of 2 is reached
        assert await asyncio.to_thread(started.wait, 10)
        third = asyncio.ensure_future(pipe.put([3]))
        await asyncio.sleep(0.2)
        assert not third.done(), "a third batch must wait for room"
        release.set()
        await asyncio.wait_for(third, 10)
        await pipe.close()

    asyncio.run(main())


def test_first_error_reaches_put_and_close_and_stops_the_writing() -> None:
    seen: list[int] = []

    def write(batch: Sequence[Any]) -> None:
        if batch[0] == 3:
            raise OSError(28, "No space left on device")
        seen.extend(batch)

    async def main() -> None:
        pipe = WriterThread(write, 1, "test-writer")
        with pytest.raises(OSError, match="No space left"):
            for i in range(100):
                await pipe.put([i])
        with pytest.raises(OSError, match="No space left"):
            await pipe.close()
        await pipe.stop()  # the error path's cleanup never raises it again

    asyncio.run(main())
    assert seen == [0, 1, 2]


def test_stop_drops_what_is_still_queued() -> None:
    release = threading.Event()
    seen: list[int] = []

    def write(batch: Sequence[Any]) -> None:
        release.wait(10)
        seen.extend(batch)

    async def main() -> None:
        pipe = WriterThread(write, 4, "test-writer")
        for i in range(4):
            await pipe.put([i])
        stopping = asyncio.ensure_future(pipe.stop())
        await asyncio.sleep(0.05)  # stop() marked the queue as dropped before the release
        release.set()
        await asyncio.wait_for(stopping, 10)

    asyncio.run(main())
    assert seen in ([], [0])  # at most the batch already being written when stop() came


def test_finish_runs_after_the_last_batch_unless_stopped_or_failed() -> None:
    events: list[str] = []

    def write(batch: Sequence[Any]) -> None:
        if batch[0] == "boom":
            raise ValueError("boom")
        events.append(f"write {batch[0]}")

    async def main(batches: list[str], stop: bool) -> None:
        pipe = WriterThread(write, 4, "test-writer", finish=lambda: events.append("finish"))
        for b in batches:
            await pipe.put([b])
        if stop:
            await pipe.stop()
            return
        pipe.end_input()
        try:
            await pipe.close()
        except ValueError:
            events.append("raised")

    asyncio.run(main(["a", "b"], stop=False))
    assert events == ["write a", "write b", "finish"]
    events.clear()
    asyncio.run(main(["a", "boom", "c"], stop=False))
    assert events == ["write a", "raised"]
    events.clear()
    asyncio.run(main(["a"], stop=True))
    assert "finish" not in events
