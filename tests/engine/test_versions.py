"""Versions in SQL: read a table as of a version, tag or timestamp; list, tag, clean up."""

from __future__ import annotations

import datetime as dt
import time

import pytest

import tarndb
from tarndb import errors as E


def test_read_as_of_version_tag_and_time(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    session.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    v_first = session.execute("SELECT max(version) FROM tarndb_versions('t')").scalar()
    assert session.execute("SELECT tarndb_tag('t', 'train-v1')").scalar() == v_first
    time.sleep(0.05)
    moment = dt.datetime.now(dt.timezone.utc).isoformat()
    time.sleep(0.05)
    session.execute("UPDATE t SET v = 'ONE' WHERE id = 1")
    session.execute("DELETE FROM t WHERE id = 2")
    session.execute("INSERT INTO t VALUES (3, 'three')")
    session.execute("ALTER TABLE t ADD COLUMN extra TEXT")
    now = session.execute("SELECT id, v FROM t ORDER BY id").rows
    assert now == [(1, "ONE"), (3, "three")]
    old = [(1, "one"), (2, "two")]
    assert session.execute(f'SELECT id, v FROM "t@{v_first}" ORDER BY id').rows == old
    assert session.execute('SELECT id, v FROM "t@train-v1" ORDER BY id').rows == old
    assert session.execute(f'SELECT id, v FROM "t@{moment}" ORDER BY id').rows == old
    assert session.execute('SELECT extra FROM "t@train-v1"').rows == [(None,), (None,)]
    assert session.execute('SELECT a.v, b.v FROM t a JOIN "t@train-v1" b ON a.id = b.id').rows \
        == [("ONE", "one")]
    listing = session.execute("SELECT version, rows, tags FROM tarndb_versions('t') "
                              "ORDER BY version").rows
    assert any(tags == ["train-v1"] for _, _, tags in listing)
    with pytest.raises(E.InsufficientPrivilege):
        session.execute('INSERT INTO "t@train-v1" VALUES (9, \'x\')')
    with pytest.raises(E.UndefinedObject):
        session.execute('SELECT * FROM "t@no-such-tag"')
    with pytest.raises(E.DuplicateObject):
        session.execute("SELECT tarndb_tag('t', 'train-v1')")
    session.execute("SELECT tarndb_cleanup('t', '0 seconds')")
    assert session.execute('SELECT id, v FROM "t@train-v1" ORDER BY id').rows == old
    assert session.execute("SELECT tarndb_untag('t', 'train-v1')").scalar() is True


def test_ranking_on_an_old_version(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE e (id INT PRIMARY KEY, emb FLOAT4[])")
    session.execute("INSERT INTO e VALUES (1, ARRAY[1,0]), (2, ARRAY[0,1])")
    session.execute("SELECT tarndb_tag('e', 'before')")
    session.execute("UPDATE e SET emb = ARRAY[0,1] WHERE id = 1")
    q = "SELECT id, emb <#> ARRAY[1,0]::float4[] AS s FROM {} ORDER BY s DESC LIMIT 1"
    assert session.execute(q.format('"e@before"')).rows == [(1, 1.0)]
    assert session.execute(q.format("e")).rows[0][1] == 0.0


def test_index_status(session: tarndb.Session) -> None:
    session.execute("CREATE TABLE d (id INT PRIMARY KEY, body TEXT, emb FLOAT4[])")
    session.execute("CREATE INDEX d_body ON d USING deeplake_index (body) "
                    "WITH (index_type = 'bm25')")
    session.execute("INSERT INTO d VALUES (1, 'red apple', ARRAY[1,0]), (2, 'pear', ARRAY[0,1])")
    rows = session.execute("SELECT name, column_name, index_type, pending_rows "
                           "FROM tarndb_indexes('d')").rows
    assert len(rows) == 1 and rows[0][:3] == ("d_body", "body", "bm25")
    assert 0 <= rows[0][3] <= 2


def test_retention_drops_old_untagged_versions(tmp_path, monkeypatch) -> None:
    from tarndb.storage import tables

    monkeypatch.setattr(tables, "RETENTION_EVERY_S", 0.0)
    db = tarndb.open(str(tmp_path / "kept"))
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE t (id INT)")
    for i in range(3):
        s.execute(f"INSERT INTO t VALUES ({i})")
        # a read folds the write-ahead log: each insert becomes a version of its own
        assert s.execute("SELECT count(*) FROM t").scalar() == i + 1
    assert len(s.execute("SELECT * FROM tarndb_versions('t')").rows) >= 4  # kept by default
    s.close()
    db.close()

    db = tarndb.open(str(tmp_path / "lake"), version_retention="0 seconds")
    assert db.version_retention == dt.timedelta(0)
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE t (id INT)")
    s.execute("INSERT INTO t VALUES (1)")
    tagged = s.execute("SELECT tarndb_tag('t', 'keep')").scalar()
    s.execute("INSERT INTO t VALUES (2)")
    s.execute("INSERT INTO t VALUES (3)")
    versions = [v for (v,) in s.execute("SELECT version FROM tarndb_versions('t')").rows]
    assert tagged in versions and len(versions) == 2  # the tagged one and the latest
    assert s.execute('SELECT count(*) FROM "t@keep"').scalar() == 1
    s.close()
    db.close()


def test_retention_comes_from_the_environment_and_feeds_cleanup(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TARNDB_VERSION_RETENTION", "2 hours")
    db = tarndb.open(str(tmp_path / "lake"))
    assert db.version_retention == dt.timedelta(hours=2)
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE t (id INT)")
    s.execute("INSERT INTO t VALUES (1)")
    s.execute("INSERT INTO t VALUES (2)")
    n = len(s.execute("SELECT * FROM tarndb_versions('t')").rows)
    assert s.execute("SELECT tarndb_cleanup('t')").scalar() == 0  # nothing is 2 hours old
    assert len(s.execute("SELECT * FROM tarndb_versions('t')").rows) == n
    with pytest.raises(E.InvalidParameterValue):
        tarndb.open(str(tmp_path / "other"), version_retention="soon")
    s.close()
    db.close()


def test_pin_files_in_sql(db: tarndb.Database) -> None:
    from tarndb.files import FileStore

    store = FileStore.from_db(db)
    a = store.put("ws", b"alpha", "a.txt")
    s = db.session(workspace="ws")
    out = s.execute("SELECT tarndb_pin_files($1, $2)", ["run-1", [str(a.id)]]).scalar()
    assert [m["sha256"] for m in out] == [a.sha256]
    assert s.execute(f"SELECT tarndb_pin_files('run-2', ARRAY['{a.id}'])").scalar()[0]["size"] == 5
    store.delete("ws", a.id)
    assert store.get_pinned("ws", a.id, "run-1").sha256 == a.sha256
    assert s.execute("SELECT tarndb_unpin_files('run-1')").scalar() is True
    assert s.execute("SELECT tarndb_unpin_files('run-2')").scalar() is True
    with pytest.raises(E.NotFound):
        store.get_pinned("ws", a.id, "run-2")
    with pytest.raises(E.InvalidParameterValue):
        s.execute("SELECT tarndb_pin_files('run-3', 'not-an-array')")
    s.close()
    ro = db.session(workspace="ws", read_only=True)
    with pytest.raises(E.InsufficientPrivilege):
        ro.execute("SELECT tarndb_pin_files('run-4', ARRAY[]::text[])")
    ro.close()
