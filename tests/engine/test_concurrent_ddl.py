"""Two transactions altering one table: neither change is lost. A definition commits only over
the revision it was made from (Catalog.update_table); an autocommit statement that lost the
race runs again on the new definition, a transaction block gets 40001. pg_restore -j sends
ALTER TABLE ... ADD PRIMARY KEY and CREATE INDEX on one table from two connections: one of
them used to vanish, every time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb
from tarndb import errors as E


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tarndb.Database]:
    database = tarndb.open(str(tmp_path / "lake"))
    yield database
    database.close()


def _shape(s: tarndb.Session, table: str) -> tuple[list[str], list[str], list[str]]:
    cons = [r[0] for r in s.execute(
        f"SELECT conname FROM pg_constraint WHERE conrelid = '{table}'::regclass "
        "ORDER BY 1").rows]
    idx = [r[0] for r in s.execute(
        f"SELECT indexname FROM pg_indexes WHERE tablename = '{table}' ORDER BY 1").rows]
    cols = [r[0] for r in s.execute(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position").rows]
    return cons, idx, cols


def test_concurrent_autocommit_ddl_on_one_table_keeps_both(db: tarndb.Database) -> None:
    s0 = db.session()
    for k in range(4):
        t = f"t{k}"
        s0.execute(f"CREATE TABLE {t} (id BIGINT NOT NULL, name TEXT)")
        s0.execute(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b')")
        errors: list[BaseException] = []
        barrier = threading.Barrier(3)

        def run(sql: str, barrier: threading.Barrier, errors: list[BaseException]) -> None:
            s = db.session()
            barrier.wait()
            try:
                s.execute(sql)
            except BaseException as e:  # noqa: BLE001 - asserted below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(sql, barrier, errors)) for sql in (
            f"ALTER TABLE {t} ADD PRIMARY KEY (id)",
            f"CREATE INDEX {t}_name ON {t} (name)",
            f"ALTER TABLE {t} ADD COLUMN extra INT")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        assert _shape(s0, t) == ([f"{t}_pkey"], [f"{t}_name", f"{t}_pkey"],
                                 ["id", "name", "extra"])
        with pytest.raises(E.UniqueViolation):  # the key holds
            s0.execute(f"INSERT INTO {t} VALUES (1, 'again', 0)")
        assert s0.execute(f"SELECT count(*) FROM {t}").rows == [(2,)]


def test_a_transaction_block_that_lost_the_race_gets_40001(db: tarndb.Database) -> None:
    s0, a = db.session(), db.session()
    s0.execute("CREATE TABLE t (id BIGINT NOT NULL, name TEXT)")
    a.execute("BEGIN")
    a.execute("CREATE INDEX t_name ON t (name)")
    a.execute("INSERT INTO t VALUES (5, 'x')")
    s0.execute("ALTER TABLE t ADD COLUMN extra INT")  # commits first
    with pytest.raises(E.SerializationFailure):
        a.execute("COMMIT")
    # Nothing of the transaction that lost: neither its index nor its row.
    assert _shape(s0, "t") == ([], [], ["id", "name", "extra"])
    assert s0.execute("SELECT count(*) FROM t").rows == [(0,)]
    a.execute("CREATE INDEX t_name ON t (name)")  # on the new definition, it goes
    assert _shape(s0, "t")[1] == ["t_name"]


def test_two_servers_altering_one_table_keep_both(tmp_path: Path) -> None:
    """Two Database objects on one lake (two servers): the second definition is checked
    against what the first committed, not written over it."""
    one = tarndb.open(str(tmp_path / "lake"))
    two = tarndb.open(str(tmp_path / "lake"))
    try:
        s1, s2 = one.session(), two.session()
        s1.execute("CREATE TABLE t (id BIGINT NOT NULL, name TEXT)")
        s2.execute("SELECT count(*) FROM t")  # server two has read the definition
        s2.execute("BEGIN")
        s2.execute("ALTER TABLE t ADD COLUMN extra INT")
        s1.execute("CREATE INDEX t_name ON t (name)")
        with pytest.raises(E.SerializationFailure):
            s2.execute("COMMIT")
        s2.execute("ALTER TABLE t ADD COLUMN extra INT")
        for d, s in ((one, s1), (two, s2)):
            d.catalog.refresh(force=True)  # (catalog listings refresh every few seconds)
            assert _shape(s, "t")[1:] == (["t_name"], ["id", "name", "extra"])
    finally:
        one.close()
        two.close()
