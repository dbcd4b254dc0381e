"""Transactions: commit, rollback, read-your-writes, isolation from other sessions."""

from __future__ import annotations

import pytest

import tarndb
from tarndb import errors as E


@pytest.fixture
def two(db: tarndb.Database) -> tuple[tarndb.Session, tarndb.Session]:
    a, b = db.session(workspace="ws"), db.session(workspace="ws")
    a.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    a.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    return a, b


def rows(s: tarndb.Session) -> list[tuple[object, ...]]:
    return s.execute("SELECT id, v FROM t ORDER BY id").rows


def test_commit_makes_all_writes_visible_together(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    a.execute("BEGIN")
    assert a.transaction_status == "T"
    a.execute("INSERT INTO t VALUES (3, 'three')")
    a.execute("UPDATE t SET v = 'ONE' WHERE id = 1")
    a.execute("DELETE FROM t WHERE id = 2")
    assert rows(a) == [(1, "ONE"), (3, "three")]  # read your own writes
    assert rows(b) == [(1, "one"), (2, "two")]    # others see nothing yet
    assert a.execute("COMMIT").command == "COMMIT"
    assert a.transaction_status == "I"
    assert rows(b) == [(1, "ONE"), (3, "three")]


def test_rollback_discards(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    a.execute("BEGIN; INSERT INTO t VALUES (9, 'nine'); DELETE FROM t WHERE id = 1")
    assert len(rows(a)) == 2
    a.execute("ROLLBACK")
    assert rows(a) == rows(b) == [(1, "one"), (2, "two")]


def test_failed_transaction_is_aborted_until_rollback(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (5, 'five')")
    with pytest.raises(E.UniqueViolation):
        a.execute("INSERT INTO t VALUES (1, 'dup')")
    assert a.transaction_status == "E"
    with pytest.raises(E.InFailedTransaction) as info:
        a.execute("SELECT 1")
    assert info.value.sqlstate == "25P02"
    assert a.execute("COMMIT").command == "ROLLBACK"
    assert rows(b) == [(1, "one"), (2, "two")]


def test_update_twice_and_delete_inside_transaction(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    a.execute("BEGIN")
    a.execute("UPDATE t SET v = 'x' WHERE id = 1")
    a.execute("UPDATE t SET v = v || 'y' WHERE id = 1")
    a.execute("INSERT INTO t VALUES (7, 'seven')")
    a.execute("UPDATE t SET v = 'SEVEN' WHERE id = 7")
    a.execute("DELETE FROM t WHERE id = 2")
    a.execute("COMMIT")
    assert rows(b) == [(1, "xy"), (7, "SEVEN")]


def test_primary_key_checked_against_uncommitted_rows(two: tuple[tarndb.Session, ...]) -> None:
    a, _ = two
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (3, 'three')")
    with pytest.raises(E.UniqueViolation):
        a.execute("INSERT INTO t VALUES (3, 'again')")
    a.execute("ROLLBACK")


def test_autocommit_statement_failure_changes_nothing(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    with pytest.raises(E.NotNullViolation):
        a.execute("INSERT INTO t VALUES (3, 'ok'), (NULL, 'bad')")
    assert rows(b) == [(1, "one"), (2, "two")]
    assert a.transaction_status == "I"


def test_concurrent_sessions_cannot_both_insert_a_key(db: tarndb.Database) -> None:
    """As in PostgreSQL: the second inserter of a key waits for the first transaction, then
    gets 23505 when it committed (and succeeds when it rolled back)."""
    import threading

    a, b = db.session(), db.session()
    a.execute("CREATE TABLE u (id INT PRIMARY KEY, who TEXT)")
    for first_commits in (True, False):
        key = 1 if first_commits else 2
        a.execute("BEGIN")
        b.execute("BEGIN")
        a.execute("INSERT INTO u VALUES ($1, 'a')", [key])
        outcome: list[object] = []

        def second(key: int = key, outcome: list[object] = outcome) -> None:
            try:
                outcome.append(b.execute("INSERT INTO u VALUES ($1, 'b')", [key]).command)
            except E.TarnError as e:
                outcome.append(e)

        t = threading.Thread(target=second)
        t.start()
        t.join(0.5)
        assert t.is_alive() and not outcome  # b waits for a's key
        a.execute("COMMIT" if first_commits else "ROLLBACK")
        t.join(10)
        if first_commits:
            assert isinstance(outcome[0], E.UniqueViolation)
            b.execute("ROLLBACK")
        else:
            assert outcome == ["INSERT 0 1"]
            b.execute("COMMIT")
    assert sorted(db.execute("SELECT id, who FROM u").rows) == [(1, "a"), (2, "b")]


def test_threads_share_a_database(db: tarndb.Database) -> None:
    import threading

    db.execute("CREATE TABLE c (id SERIAL PRIMARY KEY, n INT)")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        s = db.session()
        try:
            for j in range(10):
                s.execute("INSERT INTO c (n) VALUES ($1)", [i * 100 + j])
                s.execute("SELECT count(*) FROM c").scalar()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM c").rows == [(80, 80)]


def test_savepoints(two: tuple[tarndb.Session, ...]) -> None:
    a, b = two
    a.execute("BEGIN")
    a.execute("INSERT INTO t VALUES (3, 'three')")
    a.execute("SAVEPOINT s1")
    a.execute("DELETE FROM t WHERE id = 1")
    with pytest.raises(E.UniqueViolation):
        a.execute("INSERT INTO t VALUES (2, 'dup')")
    assert a.transaction_status == "E"
    assert a.execute("ROLLBACK TO SAVEPOINT s1").command == "ROLLBACK"
    assert a.transaction_status == "T"
    assert rows(a) == [(1, "one"), (2, "two"), (3, "three")]
    a.execute("SAVEPOINT s2")
    a.execute("RELEASE SAVEPOINT s2")
    with pytest.raises(E.InvalidSavepointSpecification):
        a.execute("ROLLBACK TO SAVEPOINT s2")
    a.execute("ROLLBACK TO SAVEPOINT s1")
    a.execute("COMMIT")
    assert rows(b) == [(1, "one"), (2, "two"), (3, "three")]
    with pytest.raises(E.NoActiveTransaction):
        a.execute("SAVEPOINT outside")
