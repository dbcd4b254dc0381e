"""Plain ``CREATE INDEX`` (btree, hash, gin, brin, none) through real clients: a scalar index,
never a search index by surprise; pandas ``to_sql`` and SQLAlchemy ``index=True``."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def _name() -> str:
    return f"pi_{uuid.uuid4().hex[:8]}"


def test_plain_indexes_on_int_timestamp_text_and_jsonb(pg_server: Server) -> None:
    t = _name()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT, made TIMESTAMP, body TEXT, doc JSONB)")
        base = dt.datetime(2024, 1, 1)
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)",
                            [(i, base + dt.timedelta(days=i), f"row {i}", json.dumps({"i": i}))
                             for i in range(20)])
        c.execute(f"CREATE INDEX ON {t} (id)")
        c.execute(f"CREATE INDEX {t}_at ON {t} USING btree (made)")
        c.execute(f"CREATE INDEX {t}_body ON {t} (body)")
        c.execute(f"CREATE INDEX {t}_body_h ON {t} USING hash (body)")
        c.execute(f"CREATE INDEX {t}_doc ON {t} USING gin (doc)")
        c.execute(f"CREATE INDEX {t}_brin ON {t} USING brin (made)")
        c.execute(f"CREATE INDEX {t}_two ON {t} (id, body)")
        c.execute(f"CREATE INDEX IF NOT EXISTS {t}_two ON {t} (id, body)")
        defs = dict(c.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s",
                              (t,)).fetchall())
        assert defs == {
            f"{t}_id_idx": f"CREATE INDEX {t}_id_idx ON public.{t} USING btree (id)",
            f"{t}_at": f"CREATE INDEX {t}_at ON public.{t} USING btree (made)",
            f"{t}_body": f"CREATE INDEX {t}_body ON public.{t} USING btree (body)",
            f"{t}_body_h": f"CREATE INDEX {t}_body_h ON public.{t} USING hash (body)",
            f"{t}_doc": f"CREATE INDEX {t}_doc ON public.{t} USING gin (doc)",
            f"{t}_brin": f"CREATE INDEX {t}_brin ON public.{t} USING brin (made)",
            f"{t}_two": f"CREATE INDEX {t}_two ON public.{t} USING btree (id, body)"}
        # No search index was made: every index is a scalar kind with nothing pending.
        kinds = c.execute(f"SELECT * FROM tarndb_indexes('{t}')").fetchall()
        assert sorted(r[2] for r in kinds) == ["brin", "btree", "btree", "btree", "btree",
                                               "gin", "hash"]
        assert c.execute(f"SELECT body FROM {t} WHERE id = 7").fetchall() == [("row 7",)]
        assert c.execute(f"SELECT id FROM {t} WHERE body = %s", ("row 3",)).fetchall() == [(3,)]
        assert c.execute(f"SELECT id FROM {t} WHERE made = %s",
                         (base + dt.timedelta(days=5),)).fetchall() == [(5,)]
        # Rows written after the index are found too.
        c.execute(f"INSERT INTO {t} VALUES (100, NULL, 'late', NULL)")
        assert c.execute(f"SELECT body FROM {t} WHERE id = 100").fetchall() == [("late",)]
        with pytest.raises(psycopg.errors.UndefinedObject):
            c.execute(f"CREATE INDEX ON {t} USING nosuch (id)")
        c.execute(f"DROP INDEX {t}_body")
        assert c.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                         (t,)).fetchall() == [(6,)]


def test_unique_plain_index_enforces_one_and_several_columns(pg_server: Server) -> None:
    t = _name()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (a INT, b TEXT)")
        c.execute(f"INSERT INTO {t} VALUES (1, 'x'), (1, 'y')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute(f"CREATE UNIQUE INDEX {t}_a ON {t} USING btree (a)")
        c.execute(f"CREATE UNIQUE INDEX {t}_ab ON {t} USING btree (a, b)")
        assert c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = %s",
                         (f"{t}_ab",)).fetchall() == [
            (f"CREATE UNIQUE INDEX {t}_ab ON public.{t} USING btree (a, b)",)]
        c.execute(f"INSERT INTO {t} VALUES (1, 'z')")
        with pytest.raises(psycopg.errors.UniqueViolation) as e:
            c.execute(f"INSERT INTO {t} VALUES (1, 'x')")
        assert f'unique constraint "{t}_ab"' in str(e.value)
        # The two-column unique index is an ON CONFLICT arbiter.
        cur = c.execute(f"INSERT INTO {t} VALUES (1, 'x') ON CONFLICT (b, a) DO NOTHING")
        assert cur.statusmessage == "INSERT 0 0"


def test_pandas_to_sql_with_defaults(pg_server: Server) -> None:
    pd = pytest.importorskip("pandas")
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(pg_server.url("postgresql+psycopg"))
    t = _name()
    df = pd.DataFrame({"n": [3, 1, 2], "name": ["c", "a", "b"],
                       "at": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02"])})
    try:
        df.to_sql(t, engine)  # index=True: a column "index" and an index on it
        df.to_sql(t, engine, if_exists="append")
        back = pd.read_sql(f"SELECT * FROM {t} ORDER BY n, \"index\"", engine)
        assert back["n"].tolist() == [1, 1, 2, 2, 3, 3]
        assert back["index"].tolist() == [1, 1, 2, 2, 0, 0]
        assert back["name"].tolist() == ["a", "a", "b", "b", "c", "c"]
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (t,)).fetchall()
        assert rows == [(f'CREATE INDEX ix_{t}_index ON public.{t} USING btree (index)',)]
        insp = sqlalchemy.inspect(engine)
        assert [ix["column_names"] for ix in insp.get_indexes(t)] == [["index"]]
    finally:
        engine.dispose()


def test_sqlalchemy_index_true_columns(pg_server: Server) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(pg_server.url("postgresql+psycopg"))
    md = sqlalchemy.MetaData()
    t = _name()
    table = sqlalchemy.Table(
        t, md, sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True),
        sqlalchemy.Column("email", sqlalchemy.String(80), index=True, unique=True),
        sqlalchemy.Column("created", sqlalchemy.DateTime, index=True))
    try:
        md.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [
                {"id": 1, "email": "a@x", "created": dt.datetime(2024, 1, 1)},
                {"id": 2, "email": "b@x", "created": dt.datetime(2024, 1, 2)}])
        with engine.begin() as conn:
            got = conn.execute(
                sqlalchemy.select(table.c.id).where(table.c.email == "b@x")).all()
            assert got == [(2,)]
        with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 3, "email": "a@x"}])
    finally:
        engine.dispose()
