"""Many writers at once, through psycopg against real ``tarndb serve`` processes (one, or two
on the same lake). Every test asserts exact counts: the final value equals the committed
increments, one winner per key, no id handed out twice, nothing acknowledged lost."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import errors as pe

from .conftest import Serve


def _run_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(i: int) -> None:
        try:
            work(i)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors


def _increments(srvs: list[Serve], clients: int, each: int) -> None:
    with srvs[0].connect() as c:
        c.execute("CREATE TABLE counters (id INT PRIMARY KEY, n INT NOT NULL)")
        c.execute("INSERT INTO counters VALUES (1, 0)")
    returned: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with srvs[i % len(srvs)].connect() as c:
            for _ in range(each):
                row = c.execute(
                    "UPDATE counters SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
                assert row is not None
                with lock:
                    returned.append(row[0])

    errors = _run_threads(clients, work)
    assert errors == []
    with srvs[-1].connect() as c:
        final = c.execute("SELECT n FROM counters WHERE id = 1").fetchone()
    assert len(returned) == clients * each
    assert sorted(returned) == list(range(1, clients * each + 1))  # all distinct
    assert final == (clients * each,)


def test_increments_from_many_clients_are_never_lost(servers: Any) -> None:
    _increments(servers(1), clients=20, each=50)


def test_increments_from_two_servers_on_one_lake_are_never_lost(servers: Any) -> None:
    _increments(servers(2), clients=10, each=20)


def test_explicit_transactions_wait_for_the_row_and_apply_to_the_newest_version(
        servers: Any) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT)")
        c.execute("INSERT INTO acct VALUES (1, 100), (2, 100)")

    def work(i: int) -> None:
        with srv.connect(autocommit=False) as c:
            for _ in range(10):
                c.execute("UPDATE acct SET bal = bal - 1 WHERE id = 1")
                c.execute("UPDATE acct SET bal = bal + 1 WHERE id = 2")
                c.commit()

    # Every transaction locks row 1 first, so they queue and none deadlocks.
    assert _run_threads(8, work) == []
    with srv.connect() as c:
        assert c.execute("SELECT id, bal FROM acct ORDER BY id").fetchall() == [(1, 20),
                                                                                (2, 180)]


def test_a_deleted_row_stays_deleted_under_concurrent_updates(servers: Any) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE items (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO items SELECT i, 0 FROM generate_series(1, 60) AS t(i)")
    deleted: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with srv.connect() as c:
            for k in range(1, 61):
                if (k + i) % 3 == 0:
                    cur = c.execute("DELETE FROM items WHERE id = %s", [k])
                    if cur.rowcount == 1:
                        with lock:
                            deleted.append(k)
                else:
                    c.execute("UPDATE items SET v = v + 1 WHERE id = %s", [k])

    assert _run_threads(6, work) == []
    assert len(deleted) == len(set(deleted)), sorted(deleted)  # each row deleted exactly once
    with srv.connect() as c:
        left = {r[0] for r in c.execute("SELECT id FROM items").fetchall()}
    assert left.isdisjoint(deleted)
    assert left | set(deleted) == set(range(1, 61))


def test_one_winner_per_key_from_many_connections(servers: Any) -> None:
    srvs = servers(2)
    with srvs[0].connect() as c:
        c.execute("CREATE TABLE k (id INT PRIMARY KEY, who INT, email TEXT UNIQUE)")
    wins: list[tuple[int, int]] = []
    dups: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with srvs[i % 2].connect() as c:
            for key in range(15):
                try:
                    c.execute("INSERT INTO k VALUES (%s, %s, %s)",
                              [key, i, f"{key}@x" if i % 2 else f"{key}@y{i}"])
                    with lock:
                        wins.append((key, i))
                except pe.UniqueViolation:
                    with lock:
                        dups.append((key, i))

    assert _run_threads(12, work) == []
    assert sorted(k for k, _ in wins) == list(range(15))  # exactly one winner per key
    assert len(dups) == 15 * 11
    with srvs[1].connect() as c:
        rows = c.execute("SELECT id, who FROM k ORDER BY id").fetchall()
    assert rows == sorted(wins)


def test_bigserial_from_two_servers_never_clashes(servers: Any) -> None:
    srvs = servers(2)
    with srvs[0].connect() as c:
        c.execute("CREATE TABLE ev (id BIGSERIAL PRIMARY KEY, src INT)")
    got: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with srvs[i % 2].connect() as c:
            for _ in range(20):
                row = c.execute("INSERT INTO ev (src) VALUES (%s) RETURNING id", [i]).fetchone()
                assert row is not None
                with lock:
                    got.append(row[0])

    assert _run_threads(8, work) == []
    assert len(got) == 160 and len(set(got)) == 160
    with srvs[1].connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM ev").fetchone() == (160, 160)


def test_repeatable_read_write_skew_on_one_row_fails_with_40001(servers: Any) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE doc (id INT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO doc VALUES (1, 'v0')")
    a = srv.connect()
    b = srv.connect()
    try:
        a.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert a.execute("SELECT body FROM doc").fetchone() == ("v0",)
        b.execute("UPDATE doc SET body = 'b' WHERE id = 1")
        assert a.execute("SELECT body FROM doc").fetchone() == ("v0",)  # its snapshot
        with pytest.raises(pe.SerializationFailure):
            a.execute("UPDATE doc SET body = 'a' WHERE id = 1")
        a.execute("ROLLBACK")
        b.execute("SET default_transaction_isolation = 'serializable'")
        assert b.execute("SHOW transaction_isolation").fetchone() == ("serializable",)
        assert b.execute("SELECT body FROM doc").fetchone() == ("b",)
    finally:
        a.close()
        b.close()


def test_ddl_is_transactional(servers: Any) -> None:
    (srv,) = servers(1)
    a = srv.connect(autocommit=False)
    b = srv.connect()
    try:
        a.execute("CREATE TABLE t1 (id INT PRIMARY KEY)")
        a.execute("INSERT INTO t1 VALUES (1)")
        with pytest.raises(pe.UndefinedTable):
            b.execute("SELECT * FROM t1")  # invisible until COMMIT
        a.rollback()
        with pytest.raises(pe.UndefinedTable):
            b.execute("SELECT * FROM t1")
        b.execute("CREATE TABLE t2 (id INT)")
        a.execute("ALTER TABLE t2 ADD COLUMN extra TEXT")
        a.execute("CREATE UNIQUE INDEX t2_id ON t2 (id)")
        a.rollback()
        b.execute("INSERT INTO t2 VALUES (1), (1)")  # the unique index went with ROLLBACK
        assert [d.name for d in b.execute("SELECT * FROM t2").description] == ["id"]
        a.execute("DROP TABLE t2")
        assert b.execute("SELECT count(*) FROM t2").fetchone() == (2,)
        a.commit()
        with pytest.raises(pe.UndefinedTable):
            b.execute("SELECT * FROM t2")
    finally:
        a.close()
        b.close()


def test_lock_timeout_and_statement_timeout(servers: Any) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE r (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO r VALUES (1, 0)")
    a = srv.connect(autocommit=False)
    b = srv.connect()
    try:
        a.execute("UPDATE r SET v = 1 WHERE id = 1")
        b.execute("SET lock_timeout = '300ms'")
        with pytest.raises(pe.LockNotAvailable):
            b.execute("UPDATE r SET v = 2 WHERE id = 1")
        b.execute("SET lock_timeout = 0")
        b.execute("SET statement_timeout = '400ms'")
        with pytest.raises(pe.QueryCanceled):
            b.execute("DELETE FROM r WHERE id = 1")  # waits for a's row lock
        a.commit()
        assert b.execute("SELECT v FROM r").fetchone() == (1,)
        with pytest.raises(pe.QueryCanceled):
            b.execute("SELECT count(*) FROM range(3000000000) a, range(10) b")
    finally:
        a.close()
        b.close()


def test_deadlock_is_detected(servers: Any) -> None:
    """a holds row 1 and wants row 2; b holds row 2 and wants row 1: exactly one of them is
    chosen as the victim (40P01) and the other goes on."""
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE d (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO d VALUES (1, 0), (2, 0)")
    a = srv.connect(autocommit=False)
    b = srv.connect(autocommit=False)
    outcome: dict[str, str] = {}
    try:
        a.execute("UPDATE d SET v = 1 WHERE id = 1")
        b.execute("UPDATE d SET v = 2 WHERE id = 2")

        def second(name: str, conn: psycopg.Connection, row: int) -> None:
            try:
                conn.execute("UPDATE d SET v = %s WHERE id = %s", [row, 3 - row])
                outcome[name] = "ok"
            except pe.DeadlockDetected:
                outcome[name] = "victim"
                conn.rollback()
            else:
                conn.commit()

        threads = [threading.Thread(target=second, args=("a", a, 1)),
                   threading.Thread(target=second, args=("b", b, 2))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcome.values()) == ["ok", "victim"], outcome
        winner = 1 if outcome["a"] == "ok" else 2
        with srv.connect() as c:
            assert c.execute("SELECT v FROM d ORDER BY id").fetchall() == [(winner,), (winner,)]
    finally:
        a.close()
        b.close()


def test_kill_9_loses_no_acknowledged_write(servers: Any) -> None:
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE acked (id BIGSERIAL PRIMARY KEY, k INT UNIQUE, n INT)")
        c.execute("CREATE TABLE cnt (id INT PRIMARY KEY, n INT)")
        c.execute("INSERT INTO cnt VALUES (1, 0)")
    acked: list[tuple[int, int]] = []
    incs = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def work(i: int) -> None:
        try:
            with srv.connect() as c:
                for j in range(10_000):
                    if stop.is_set():
                        return
                    row = c.execute("INSERT INTO acked (k, n) VALUES (%s, %s) RETURNING id",
                                    [i * 100_000 + j, j]).fetchone()
                    assert row is not None
                    with lock:
                        acked.append((row[0], i * 100_000 + j))
                    c.execute("UPDATE cnt SET n = n + 1 WHERE id = 1")
                    with lock:
                        incs[0] += 1
        except psycopg.OperationalError:
            return  # the server died under us: what was acknowledged must be there

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    import time

    deadline = time.monotonic() + 60
    while len(acked) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 60
    (again,) = servers(1)
    with again.connect() as c:
        ids = {r[0]: r[1] for r in c.execute("SELECT id, k FROM acked").fetchall()}
        n = c.execute("SELECT n FROM cnt").fetchone()
        assert c.execute("SELECT count(*) = count(DISTINCT id) AND count(*) = "
                         "count(DISTINCT k) FROM acked").fetchone() == (True,)
        for rid, k in acked:
            assert ids.get(rid) == k
        # every acknowledged increment is there; at most one more (the one in flight)
        assert n is not None and incs[0] <= n[0] <= incs[0] + 6
        # the sequence goes on past every id handed out before the crash
        row = c.execute("INSERT INTO acked (k, n) VALUES (-1, 0) RETURNING id").fetchone()
        assert row is not None and row[0] not in ids


def test_kill_9_with_rows_only_in_the_write_ahead_log(servers: Any) -> None:
    """Inserts are acknowledged once in the table's write-ahead log, before any Lance
    commit: a server killed then must leave them all to the next one, each once, keys
    still enforced."""
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE logged (id INT PRIMARY KEY, who INT)")
    acked: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def work(i: int) -> None:
        try:
            with srv.connect() as c:
                for j in range(100_000):
                    if stop.is_set():
                        return
                    key = i * 1_000_000 + j
                    c.execute("INSERT INTO logged VALUES (%s, %s)", [key, i])
                    with lock:
                        acked.append(key)
        except psycopg.OperationalError:
            return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    import time

    deadline = time.monotonic() + 60
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 200
    (again,) = servers(1)
    with again.connect() as c:
        got = [r[0] for r in c.execute("SELECT id FROM logged").fetchall()]
        assert len(got) == len(set(got))  # nothing folded twice
        assert set(acked) <= set(got)     # nothing acknowledged lost
        assert len(got) <= len(acked) + 4  # at most the statements in flight
        with pytest.raises(pe.UniqueViolation):
            c.execute("INSERT INTO logged VALUES (%s, 0)", [acked[-1]])


def test_an_abandoned_transaction_is_ended_and_its_locks_go(servers: Any) -> None:
    import time

    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE idle (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO idle VALUES (1, 0)")
    a = srv.connect(autocommit=False)
    b = srv.connect()
    try:
        a.execute("SET idle_in_transaction_session_timeout = '300ms'")
        a.execute("UPDATE idle SET v = 1 WHERE id = 1")
        time.sleep(1.0)
        b.execute("SET lock_timeout = '5s'")
        b.execute("UPDATE idle SET v = 2 WHERE id = 1")  # a's lock went with its session
        assert b.execute("SELECT v FROM idle").fetchone() == (2,)
        with pytest.raises(psycopg.Error) as ended:
            a.execute("SELECT 1")
        assert ended.value.sqlstate in ("25P03", None)  # None: the socket closed first
    finally:
        a.close()
        b.close()


def test_select_for_update_makes_read_modify_write_safe(servers: Any) -> None:
    """The application computes the new value itself: without FOR UPDATE two clients would
    read the same n; with it they queue, and every increment lands."""
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE bal (id INT PRIMARY KEY, n INT)")
        c.execute("INSERT INTO bal VALUES (1, 0)")

    def work(i: int) -> None:
        with srv.connect(autocommit=False) as c:
            for _ in range(8):
                row = c.execute("SELECT n FROM bal WHERE id = 1 FOR UPDATE").fetchone()
                assert row is not None
                c.execute("UPDATE bal SET n = %s WHERE id = 1", [row[0] + 1])
                c.commit()

    assert _run_threads(6, work) == []
    with srv.connect() as c:
        assert c.execute("SELECT n FROM bal").fetchone() == (48,)
    a = srv.connect(autocommit=False)
    b = srv.connect(autocommit=False)
    try:
        a.execute("SELECT * FROM bal WHERE id = 1 FOR SHARE")
        b.execute("SELECT * FROM bal WHERE id = 1 FOR SHARE")  # shared locks do not wait
        with pytest.raises(pe.LockNotAvailable):
            b.execute("SELECT * FROM bal WHERE id = 1 FOR UPDATE NOWAIT")
        b.rollback()
        a.rollback()
    finally:
        a.close()
        b.close()


def test_skip_locked_lets_workers_claim_distinct_jobs(servers: Any) -> None:
    """The job-queue idiom: every job is claimed by exactly one worker."""
    (srv,) = servers(1)
    with srv.connect() as c:
        c.execute("CREATE TABLE jobs (id INT PRIMARY KEY, state TEXT, worker INT)")
        c.execute("INSERT INTO jobs SELECT i, 'pending', NULL FROM generate_series(1, 40) t(i)")
    claimed: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        with srv.connect(autocommit=False) as c:
            while True:
                row = c.execute("SELECT * FROM jobs WHERE state = 'pending' ORDER BY id "
                                "LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
                if row is None:
                    c.commit()
                    return
                assert len(row) == 3 and row[1] == "pending"
                c.execute("UPDATE jobs SET state = 'done', worker = %s WHERE id = %s",
                          [i, row[0]])
                c.commit()
                with lock:
                    claimed.append((row[0], i))

    assert _run_threads(4, work) == []
    assert sorted(j for j, _ in claimed) == list(range(1, 41))  # each job exactly once
    with srv.connect() as c:
        assert c.execute("SELECT count(*) FROM jobs WHERE state = 'done'").fetchone() == (40,)
        rows = c.execute("SELECT id, worker FROM jobs ORDER BY id").fetchall()
    assert rows == sorted(claimed)
