"""Key lookups (engine/lookup.py) answered from memory: narrow text columns kept beside the
fixed-width ones (engine/colcache.py), and rows the write-ahead log replaced or deleted read
through the overlay without a fold. Every lookup must still see the newest committed row:
after UPDATE, DELETE, a fold, another server's commit; and a REPEATABLE READ snapshot."""

from __future__ import annotations

from pathlib import Path

import tarndb
from tarndb.engine import colcache


def _table(db: tarndb.Database, rows: int = 300) -> tuple[tarndb.Session, object]:
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE k (id BIGINT PRIMARY KEY, name TEXT, n INT, body TEXT)")
    s.execute("INSERT INTO k SELECT i, 'name ' || i, i % 7, repeat('x', 400) || i "
              "FROM range(0, $1) t(i)", [rows])
    s.execute("SELECT count(*) FROM k")  # folds the insert into Lance
    info = s.find_table("ws", "k")
    assert info is not None
    return s, db.store(info)


Q = "SELECT name, n FROM k WHERE id = $1"


def test_narrow_text_is_kept_and_wide_text_is_not(db: tarndb.Database) -> None:
    s, store = _table(db)
    ds = store.dataset()  # type: ignore[attr-defined]
    assert colcache.cacheable(ds, "name")
    assert not colcache.cacheable(ds, "body")  # 400+ bytes a value: a take reads it
    assert s.execute(Q, [17]).rows == [("name 17", 3)]
    assert colcache.values_by_rid(ds, "name", colcache.rids_for_value(ds, "id", 17)) \
        .to_pylist() == ["name 17"]
    assert s.execute("SELECT body FROM k WHERE id = 5").rows == [("x" * 400 + "5",)]
    assert s.execute(Q, [10_000]).rows == []


def test_lookups_follow_updates_deletes_and_folds(db: tarndb.Database) -> None:
    s, store = _table(db)
    assert s.execute(Q, [1]).rows == [("name 1", 1)]
    # Not keyed: a Lance commit (the row moves to a new fragment).
    s.execute("UPDATE k SET name = 'renamed' WHERE n = 1 AND id < 5")
    assert s.execute(Q, [1]).rows == [("renamed", 1)]
    s.execute("DELETE FROM k WHERE name = 'renamed'")
    assert s.execute(Q, [1]).rows == []
    s.execute("INSERT INTO k VALUES (1, 'back', 9, '')")
    assert s.execute(Q, [1]).rows == [("back", 9)]
    # Keyed: logged, not folded; the lookup reads the log's overlay.
    db._folding().stop()  # type: ignore[attr-defined]  # no background fold here
    s.execute("SELECT count(*) FROM k")  # fold what is logged so far
    before = store.lance_version()  # type: ignore[attr-defined]
    s.execute("UPDATE k SET name = 'logged' WHERE id = 2")
    s.execute("DELETE FROM k WHERE id = 3")
    assert s.execute(Q, [2]).rows == [("logged", 2)]
    # Deleted in the log, still in Lance: the overlay hides it, with no fold.
    assert s.execute(Q, [3]).rows == []
    assert s.execute(Q, [4]).rows == [("name 4", 4)]
    assert store.lance_version() == before  # type: ignore[attr-defined]
    # A delete alone in the log (no logged rows) hides the row too.
    s.execute("SELECT count(*) FROM k")
    s.execute("DELETE FROM k WHERE id = 4")
    assert s.execute(Q, [4]).rows == []
    # After the fold, Lance has it all.
    other = db.session(workspace="ws")
    assert other.execute("SELECT id, name FROM k WHERE id < 6 ORDER BY id").rows == \
        [(0, "name 0"), (1, "back"), (2, "logged"), (5, "name 5")]
    assert store.lance_version() > before  # type: ignore[attr-defined]
    assert not store.wal.files()  # type: ignore[attr-defined]
    for key, row in ((1, [("back", 9)]), (2, [("logged", 2)]), (3, []), (4, []),
                     (5, [("name 5", 5)])):
        assert s.execute(Q, [key]).rows == row


def test_another_servers_commits_are_seen(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    db1 = tarndb.open(lake)
    db2 = tarndb.open(lake)
    try:
        s1, _ = _table(db1, 50)
        s2 = db2.session(workspace="ws")
        assert s1.execute(Q, [7]).rows == [("name 7", 0)]  # kept in db1's memory now
        assert s2.execute(Q, [7]).rows == [("name 7", 0)]
        s2.execute("UPDATE k SET name = 'from two' WHERE id = 7")  # keyed: db2's log
        assert s1.execute(Q, [7]).rows == [("from two", 0)]
        s2.execute("UPDATE k SET name = 'again' WHERE n = 0")  # a Lance commit
        assert s1.execute(Q, [7]).rows == [("again", 0)]
        s2.execute("DELETE FROM k WHERE id = 8")
        assert s1.execute(Q, [8]).rows == []
        s1.execute("UPDATE k SET name = 'from one' WHERE id = 7")
        assert s2.execute(Q, [7]).rows == [("from one", 0)]
    finally:
        db1.close()
        db2.close()


def test_repeatable_read_keeps_its_snapshot(db: tarndb.Database) -> None:
    s, _ = _table(db, 50)
    other = db.session(workspace="ws")
    s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert s.execute(Q, [9]).rows == [("name 9", 2)]
    other.execute("UPDATE k SET name = 'later' WHERE id = 9")  # logged
    other.execute("UPDATE k SET name = 'later too' WHERE n = 3")  # a Lance commit
    other.execute("DELETE FROM k WHERE id = 11")
    assert s.execute(Q, [9]).rows == [("name 9", 2)]
    assert s.execute(Q, [10]).rows == [("name 10", 3)]
    assert s.execute(Q, [11]).rows == [("name 11", 4)]
    s.execute("COMMIT")
    assert s.execute(Q, [9]).rows == [("later", 2)]
    assert s.execute(Q, [10]).rows == [("later too", 3)]
    assert s.execute(Q, [11]).rows == []
