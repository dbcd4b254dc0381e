"""StatementLane: one turn at a time, first come first served, long turns demoted."""

from __future__ import annotations

import threading
import time

import pytest

from tarndb.pgwire.lane import StatementLane


def _run_in_threads(lane: StatementLane, n: int, hold_s: float,
                    stagger_s: float = 0.005) -> tuple[list[int], int]:
    """n threads arriving in order; returns the order they got turns and the most that
    held one at once."""
    order: list[int] = []
    lock = threading.Lock()
    active = [0, 0]  # now, most

    def work(i: int) -> None:
        with lane.turn():
            with lock:
                order.append(i)
                active[0] += 1
                active[1] = max(active[1], active[0])
            time.sleep(hold_s)
            with lock:
                active[0] -= 1

    threads = []
    for i in range(n):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        time.sleep(stagger_s)
    for t in threads:
        t.join(10)
    return order, active[1]


def test_turns_are_exclusive_and_in_arrival_order() -> None:
    lane = StatementLane(width=1, demote_after_s=5.0)
    order, most = _run_in_threads(lane, 8, hold_s=0.02)
    assert order == list(range(8))
    assert most == 1


def test_width_lets_that_many_run_at_once() -> None:
    lane = StatementLane(width=3, demote_after_s=5.0)
    _, most = _run_in_threads(lane, 9, hold_s=0.05, stagger_s=0.0)
    assert most == 3


def test_a_long_turn_stops_blocking_the_next() -> None:
    lane = StatementLane(width=1, demote_after_s=0.05)
    started = threading.Event()
    release = threading.Event()

    def slow() -> None:
        with lane.turn():
            started.set()
            release.wait(10)

    t = threading.Thread(target=slow)
    t.start()
    assert started.wait(5)
    t0 = time.monotonic()
    with lane.turn():  # waits for the demotion, not for the slow one to end
        waited = time.monotonic() - t0
    release.set()
    t.join(5)
    assert 0.02 <= waited < 2.0


def test_an_interrupted_waiter_does_not_strand_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    lane = StatementLane(width=1, demote_after_s=5.0)
    holder_in, holder_out = threading.Event(), threading.Event()

    def holder() -> None:
        with lane.turn():
            holder_in.set()
            holder_out.wait(10)

    h = threading.Thread(target=holder)
    h.start()
    assert holder_in.wait(5)

    class Boom(Exception):
        pass

    # A waiter whose wait raises (as a KeyboardInterrupt would) leaves the queue.
    calls = {"n": 0}

    def failing_wait(self: threading.Event, timeout: float | None = None) -> bool:
        calls["n"] += 1
        raise Boom

    with monkeypatch.context() as mp:
        mp.setattr(threading.Event, "wait", failing_wait)
        with pytest.raises(Boom), lane.turn():
            pass
    assert calls["n"] == 1 and lane.waiting == 0
    holder_out.set()
    h.join(5)
    with lane.turn():
        pass


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError):
        StatementLane(width=0)
