"""A view never lets a session reach a workspace it could not reach directly, and a role reads
a view only with SELECT on it (test_view_grants.py has the view GRANTs themselves). Attacked
through the Postgres protocol and HTTP, with workspace-scoped tokens and a role with GRANTs,
against the shared seeded ``tarndb serve`` (see _security_support)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from _security_support import ALICE_PASSWORD, Stack


@pytest.fixture
def views(stack: Stack) -> Iterator[Stack]:
    # made by the superuser: ws1.leak reads ws2's table, ws1.hidden_v a ws1 table that
    # alice was never granted, ws1.ok a table everyone here may read
    stack.admin_sql("CREATE TABLE ws1.hidden (id INT, secret TEXT)")
    stack.admin_sql("INSERT INTO ws1.hidden VALUES (1, 'ws1 hidden secret')")
    stack.admin_sql("CREATE VIEW ws1.leak AS SELECT id, body FROM ws2.t")
    stack.admin_sql("CREATE VIEW ws1.hidden_v AS SELECT * FROM ws1.hidden")
    stack.admin_sql("CREATE VIEW ws1.ok AS SELECT id, body FROM ws1.t")
    stack.admin_sql("CREATE VIEW ws2.v2 AS SELECT id, body FROM ws2.t")
    stack.admin_sql("CREATE VIEW ws1.chained AS SELECT * FROM ws2.v2")
    try:
        yield stack
    finally:
        for v in ("ws1.chained", "ws2.v2", "ws1.ok", "ws1.hidden_v", "ws1.leak"):
            stack.admin_sql(f"DROP VIEW IF EXISTS {v}")
        stack.admin_sql("DROP TABLE IF EXISTS ws1.hidden")
        stack.admin_sql("DROP VIEW IF EXISTS ws1.made_by_token")


def test_scoped_tokens_cannot_read_through_a_view_pg(views: Stack) -> None:
    for name in ("read", "write"):
        with views.pg_token(name) as c:
            assert c.execute("SELECT id FROM ws1.ok ORDER BY id").fetchall() == [(1,), (2,)]
            for sql in ("SELECT * FROM ws1.leak", "SELECT * FROM leak",
                        "SELECT * FROM ws1.chained", "SELECT * FROM ws2.v2",
                        "SELECT o.id FROM ws1.ok o JOIN ws1.leak l ON l.id = o.id",
                        "SELECT * FROM ws1.t WHERE id IN (SELECT id FROM ws1.leak)",
                        "SELECT id, body FROM ws1.leak WHERE id = 1",
                        "EXPLAIN SELECT * FROM ws1.leak",
                        "WITH x AS (SELECT * FROM ws1.chained) SELECT count(*) FROM x"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    c.execute(sql)
            with pytest.raises(psycopg.errors.InsufficientPrivilege), \
                    c.cursor().copy("COPY (SELECT * FROM ws1.leak) TO STDOUT") as cp:
                cp.read()
            # the catalogs do not show the other workspace's view either
            assert c.execute("SELECT viewname FROM pg_views ORDER BY 1").fetchall() == \
                [("chained",), ("hidden_v",), ("leak",), ("ok",)]
    with views.pg_token("write") as c:
        # nor can a token make a view over what it cannot read
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("CREATE VIEW ws1.made_by_token AS SELECT * FROM ws2.t")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("CREATE VIEW ws1.made_by_token AS SELECT * FROM ws2.v2")
    with views.pg_token("read") as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("CREATE VIEW ws1.made_by_token AS SELECT * FROM ws1.t")


def test_scoped_tokens_cannot_read_through_a_view_http(views: Stack) -> None:
    r = views.http_sql("read", "SELECT id FROM ok ORDER BY id")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[1], [2]]
    for sql in ("SELECT * FROM leak", "SELECT * FROM ws1.chained",
                "SELECT count(*) FROM (SELECT * FROM ws1.leak) s"):
        for token in ("read", "write"):
            r = views.http_sql(token, sql)
            assert r.status_code == 403, (sql, r.text)
            assert "ws2 row" not in r.text
    r = views.http_sql("admin", "SELECT count(*) FROM ws1.leak")
    assert r.status_code == 200 and r.json()["rows"] == [[3]]


def test_roles_need_select_on_the_view(views: Stack) -> None:
    # alice holds SELECT on ws1's tables (granted before these views existed), on no view:
    # as in PostgreSQL, reading a view needs SELECT on the view itself
    with views.pg(user="alice", password=ALICE_PASSWORD) as c:
        assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)
        for sql in ("SELECT * FROM ws1.hidden", "SELECT * FROM ws1.hidden_v",
                    "SELECT * FROM ws1.leak", "SELECT * FROM ws1.chained",
                    "SELECT count(*) FROM ws1.ok"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # only owners make views
            c.execute("CREATE VIEW ws1.made_by_token AS SELECT * FROM ws1.t")
