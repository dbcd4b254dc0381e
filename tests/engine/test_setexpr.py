"""``UPDATE ... SET <simple list> WHERE pk = value`` evaluated without DuckDB (engine/setexpr.py)
gives what the general path gives: the same rows, the same errors, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import setexpr

_DDL = ("CREATE TABLE {t} (id INT PRIMARY KEY, n INT, s SMALLINT, b BIGINT, f REAL, d DOUBLE "
        "PRECISION, txt TEXT, v VARCHAR(5), ok BOOL, j JSONB, e FLOAT4[], ts TIMESTAMPTZ, "
        "c INT NOT NULL DEFAULT 0 CHECK (c < 50))")
_ROW = ("INSERT INTO {t} VALUES (1, 2147483646, 32766, 5, 1.5, 2.5, 'a', 'abc', true, "
        "'{{\"k\": [1, 2]}}', '{{0.1,0.2}}', '2026-01-02 03:04:05+00', 1), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 2)")

#: (statement, parameters): simple ones, then ones the module leaves to DuckDB.
_STATEMENTS: list[tuple[str, list[Any]]] = [
    ("UPDATE {t} SET n = n + 1 WHERE id = 1", []),
    ("UPDATE {t} SET n = n + 1 WHERE id = 1", []),  # integer out of range
    ("UPDATE {t} SET s = s + 1 WHERE id = 1", []),
    ("UPDATE {t} SET s = s + 1 WHERE id = 1", []),  # smallint out of range
    ("UPDATE {t} SET b = b * $1 - 3 WHERE id = $2", [1 << 40, 1]),
    ("UPDATE {t} SET b = b * b WHERE id = 1", []),  # bigint out of range
    ("UPDATE {t} SET n = $1 WHERE id = 1", [1 << 40]),  # integer out of range
    ("UPDATE {t} SET n = -n, s = 7 WHERE id = 1", []),
    ("UPDATE {t} SET n = n + 1, s = s - 1 WHERE id = 2", []),  # NULL + 1
    ("UPDATE {t} SET f = 0.1, d = $1 WHERE id = 1", [0.1]),
    ("UPDATE {t} SET f = $1, d = 3 WHERE id = 2", [1e-3]),
    ("UPDATE {t} SET txt = 'b', v = $1, ok = false WHERE id = 1", ["xy"]),
    ("UPDATE {t} SET v = 'toolong' WHERE id = 1", []),  # 22001
    ("UPDATE {t} SET c = c + 100 WHERE id = 1", []),  # 23514
    ("UPDATE {t} SET c = NULL WHERE id = 2", []),  # 23502
    ("UPDATE {t} SET id = 2 WHERE id = 1", []),  # 23505
    ("UPDATE {t} SET n = 5 WHERE id = 99", []),  # no row
    ("UPDATE {t} SET txt = NULL, ok = NULL WHERE id = 1", []),
    # Left to DuckDB: a division, a function, a cast, text into an integer column.
    ("UPDATE {t} SET n = n / 2 WHERE id = 1", []),
    ("UPDATE {t} SET txt = upper(v) WHERE id = 1", []),
    ("UPDATE {t} SET n = '12'::int WHERE id = 2", []),
    ("UPDATE {t} SET n = '13' WHERE id = 2", []),
    ("UPDATE {t} SET f = n WHERE id = 1", []),
    ("UPDATE {t} SET n = n + 1 WHERE id = 1 RETURNING n, txt", []),
]


def _run(s: tarndb.Session, table: str, messages: list[str]) -> list[Any]:
    out: list[Any] = []
    for sql, params in _STATEMENTS:
        try:
            r = s.execute(sql.format(t=table), params)
            out.append((r.command, r.rows if r.columns else None))
        except E.TarnError as e:
            out.append((e.sqlstate, None))  # DuckDB words some of them its own way
            messages.append(str(e))
    out.append(s.execute(f"SELECT * FROM {table} ORDER BY id").rows)
    return out


def test_simple_updates_match_the_general_path(db: tarndb.Database,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fast = db.session(workspace="ws")
    slow = db.session(workspace="ws")
    slow.execute("SET tarndb.fast_paths = off")
    for s, t in ((fast, "a"), (slow, "b")):
        s.execute(_DDL.format(t=t))
        s.execute(_ROW.format(t=t))
    taken: list[bool] = []
    real = setexpr.updated_rows

    def counting(*args: Any) -> Any:
        try:
            out = real(*args)
        except E.TarnError:  # the module's own answer (an overflow)
            taken.append(True)
            raise
        taken.append(out is not None)
        return out

    monkeypatch.setattr(setexpr, "updated_rows", counting)
    said: list[str] = []
    got, want = _run(fast, "a", said), _run(slow, "b", [])
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, (i, _STATEMENTS[i] if i < len(_STATEMENTS) else "final rows")
    # The simple statements took the module's path; the last five but one fell back.
    assert taken == [True] * 18 + [False] * 4 + [True, True]
    # PostgreSQL's wording for the overflows the module checks.
    assert said[:4] == ["integer out of range", "smallint out of range",
                        "bigint out of range", "integer out of range"]


def test_a_counter_under_many_writers_is_exact(db: tarndb.Database) -> None:
    import threading

    s = db.session(workspace="ws")
    s.execute("CREATE TABLE cnt (id INT PRIMARY KEY, n INT)")
    s.execute("INSERT INTO cnt VALUES (1, 0)")

    def work() -> None:
        w = db.session(workspace="ws")
        for _ in range(50):
            w.execute("UPDATE cnt SET n = n + 1 WHERE id = 1")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert s.execute("SELECT n FROM cnt").rows == [(300,)]
