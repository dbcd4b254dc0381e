"""pgjdbc's DatabaseMetaData (getTables, getColumns, getPrimaryKeys, getIndexInfo,
getImportedKeys, getTypeInfo) against a real server, where a JDK and Debian's
libpostgresql-jdbc-java are installed."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")

JAR = Path("/usr/share/java/postgresql.jar")
pytestmark = pytest.mark.skipif(shutil.which("java") is None or not JAR.exists(),
                                reason="no JDK or no pgjdbc (libpostgresql-jdbc-java)")


def test_database_metadata(pg_server: Server) -> None:
    ws = f"jdbc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {ws}")
        c.execute(f"CREATE TABLE {ws}.items (id SERIAL PRIMARY KEY, name TEXT UNIQUE)")
        c.execute(f"CREATE TABLE {ws}.child (id INT PRIMARY KEY, item_id INT REFERENCES "
                  f"{ws}.items(id), note TEXT NOT NULL)")
        c.execute(f"CREATE INDEX child_note_idx ON {ws}.child (note)")
        c.execute(f"INSERT INTO {ws}.items (name) VALUES ('a'), ('b')")
    run = subprocess.run(["java", "-cp", str(JAR), str(Path(__file__).parent / "jdbc" /
                                                        "Meta.java"),
                          str(pg_server.port), pg_server.password, ws],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = set(run.stdout.splitlines())
    expected = {
        "product: PostgreSQL 15.8 (tarndb)",
        f"table: TABLE_SCHEM={ws} TABLE_NAME=child TABLE_TYPE=TABLE",
        f"table: TABLE_SCHEM={ws} TABLE_NAME=items TABLE_TYPE=TABLE",
        "column: TABLE_NAME=items COLUMN_NAME=id TYPE_NAME=serial DATA_TYPE=4 "
        "IS_NULLABLE=NO IS_AUTOINCREMENT=YES",
        "column: TABLE_NAME=child COLUMN_NAME=note TYPE_NAME=text DATA_TYPE=12 "
        "IS_NULLABLE=NO IS_AUTOINCREMENT=NO",
        "pk: COLUMN_NAME=id PK_NAME=items_pkey KEY_SEQ=1",
        "index: INDEX_NAME=items_name_key NON_UNIQUE=f COLUMN_NAME=name ORDINAL_POSITION=1",
        "index: INDEX_NAME=items_pkey NON_UNIQUE=f COLUMN_NAME=id ORDINAL_POSITION=1",
        "fk: PKTABLE_NAME=items PKCOLUMN_NAME=id FKCOLUMN_NAME=item_id "
        "FK_NAME=child_item_id_fkey",
        "row: id=1 name=a",
        "row: id=2 name=b",
    }
    assert expected <= lines, sorted(lines)
    typeinfo = next(x for x in lines if x.startswith("typeinfo: "))
    assert typeinfo.endswith("int4=true") and int(typeinfo.split()[1]) > 20
