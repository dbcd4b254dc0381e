"""Django (migrate of an app with a ForeignKey, unique fields, indexes and a pgvector
VectorField, a second migration that alters fields, ORM CRUD) and Alembic (a unique
constraint, alter_column type_) against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .conftest import Server

pytest.importorskip("django")
sa = pytest.importorskip("sqlalchemy")
alembic_ops = pytest.importorskip("alembic.operations")
alembic_migration = pytest.importorskip("alembic.runtime.migration")
psycopg = pytest.importorskip("psycopg")

APP = Path(__file__).parent / "django_app"


def test_django_migrate_and_orm(pg_server: Server, tmp_path: Path) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
    (tmp_path / "tapp_migrations").mkdir()
    (tmp_path / "tapp_migrations" / "__init__.py").write_text("")
    run = subprocess.run([sys.executable, str(APP / "run_django.py"), str(pg_server.port),
                          str(tmp_path)], env=dict(os.environ, PGPASSWORD=pg_server.password),
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out == {"near": ["one", "two"], "by_author": ["one", "two"], "json": ["two"],
                   "price": "4.00", "unique": "IntegrityError",
                   "unique_together": "IntegrityError",
                   "born_type": "timestamp with time zone", "pages": [100, 100, 100],
                   "left": ["three"]}
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        # The migration's foreign key is enforced by the database itself.
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            c.execute("INSERT INTO tapp_book (author_id, title, price, data, pages) "
                      "VALUES (424242, 'orphan', 1, '{}', 1)")
        assert c.execute("SELECT count(*) FROM django_migrations WHERE app = 'tapp'"
                         ).fetchone() == (1,)


def test_alembic_unique_constraint_and_alter_column_type(pg_server: Server) -> None:
    t = f"alem_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(pg_server.url("postgresql+psycopg"))
    with engine.begin() as conn:
        op = alembic_ops.Operations(alembic_migration.MigrationContext.configure(conn))
        op.create_table(t, sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("code", sa.String(20)), sa.Column("qty", sa.Integer),
                        sa.Column("label", sa.Text))
        conn.execute(sa.text(f"INSERT INTO {t} VALUES (1, 'a', 5, '7'), (2, 'b', NULL, '8')"))
        op.create_unique_constraint(f"{t}_code_uq", t, ["code"])
        op.alter_column(t, "qty", type_=sa.BigInteger())
        op.alter_column(t, "code", type_=sa.String(100))
        op.alter_column(t, "label", type_=sa.Integer(), postgresql_using="label::integer")
    insp = sa.inspect(engine)
    cols = {c["name"]: c["type"] for c in insp.get_columns(t)}
    assert isinstance(cols["qty"], sa.BigInteger) and isinstance(cols["label"], sa.Integer)
    assert [u["name"] for u in insp.get_unique_constraints(t)] == [f"{t}_code_uq"]
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT id, qty, label FROM {t} ORDER BY id")
                            ).fetchall() == [(1, 5, 7), (2, None, 8)]
        conn.execute(sa.text(f"INSERT INTO {t} VALUES (3, 'c', 9000000000, 1)"))
        conn.commit()
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(sa.text(f"INSERT INTO {t} VALUES (4, 'a', 1, 1)"))
        conn.rollback()
    with engine.begin() as conn:  # a value that does not convert: 22P02, nothing changes
        op = alembic_ops.Operations(alembic_migration.MigrationContext.configure(conn))
        with pytest.raises(sa.exc.DataError):
            op.alter_column(t, "code", type_=sa.Integer(), postgresql_using="code::integer")
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT code FROM {t} ORDER BY id")).fetchall() == [
            ("a",), ("b",), ("c",)]
    engine.dispose()
