"""Row locks queue their waiters first come first served, and an UPDATE by primary key waits
for the row before reading it, so writers of one hot row each run once."""

from __future__ import annotations

import threading
import time

import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import dml
from tarndb.engine.locks import LockManager


def test_waiters_are_served_in_arrival_order() -> None:
    lm = LockManager()
    lm.acquire(1, ["row"])
    order: list[int] = []

    def wait_for(owner: int) -> None:
        lm.acquire(owner, ["row"])
        order.append(owner)
        time.sleep(0.01)
        lm.release_all(owner)

    threads = []
    for owner in range(2, 8):
        t = threading.Thread(target=wait_for, args=(owner,))
        t.start()
        threads.append(t)
        time.sleep(0.03)  # each is queued before the next arrives
    lm.release_all(1)
    for t in threads:
        t.join(5)
    assert order == [2, 3, 4, 5, 6, 7]
    assert lm.count() == 0


def test_a_queued_waiter_that_gives_up_leaves_the_queue() -> None:
    lm = LockManager()
    lm.acquire(1, ["k"])
    with pytest.raises(E.LockNotAvailable):
        lm.acquire(2, ["k"], timeout=0.05)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.append(len(lm.acquire(3, ["k"]))))
    t.start()
    time.sleep(0.05)
    lm.release_all(1)
    t.join(5)
    assert got == [1]  # owner 3 waited once and was not stuck behind owner 2
    lm.release_all(3)
    assert lm.count() == 0


def test_shared_requests_do_not_overtake_a_queued_exclusive_one() -> None:
    lm = LockManager()
    lm.acquire(1, ["s"], exclusive=False)
    done: list[int] = []
    t = threading.Thread(target=lambda: (lm.acquire(2, ["s"]), done.append(2)))
    t.start()
    time.sleep(0.05)  # 2 waits for the exclusive lock
    with pytest.raises(E.LockNotAvailable):
        lm.acquire(3, ["s"], exclusive=False, timeout=0.05)
    lm.release_all(1)
    t.join(5)
    assert done == [2]
    lm.release_all(2)


def test_update_by_key_waits_for_the_row_before_reading_it(
        db: tarndb.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    s1 = db.session()
    s1.execute("CREATE TABLE hot (id INT PRIMARY KEY, n INT)")
    s1.execute("INSERT INTO hot VALUES (1, 0), (2, 0)")
    reads: list[int] = []
    real = dml._updated_rows

    def counting(*args: object, **kw: object) -> object:
        reads.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(dml, "_updated_rows", counting)
    from tarndb.engine import setexpr

    real_simple = setexpr.updated_rows

    def counting_simple(*args: object, **kw: object) -> object:
        out = real_simple(*args, **kw)  # type: ignore[arg-type]
        if out is not None:  # a read of the row (else the general path reads it)
            reads.append(1)
        return out

    monkeypatch.setattr(setexpr, "updated_rows", counting_simple)
    s1.execute("BEGIN")
    s1.execute("UPDATE hot SET n = n + 1 WHERE id = 1")
    assert len(reads) == 1
    s2 = db.session()
    t = threading.Thread(target=lambda: s2.execute("UPDATE hot SET n = n + 10 WHERE id = 1"))
    t.start()
    time.sleep(0.2)
    assert len(reads) == 1  # s2 waits for the row's lock, not having read it
    s1.execute("COMMIT")
    t.join(10)
    assert len(reads) == 2  # ... and reads it once, after s1's commit
    assert s1.execute("SELECT id, n FROM hot ORDER BY id").rows == [(1, 11), (2, 0)]
    s1.close()
    s2.close()
