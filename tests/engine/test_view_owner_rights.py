"""A role reading a view with its owner's rights never reaches the table behind it through
what the statement's scope registers while it is bound: the scope's name for the table
(``__t<n>``, a process-wide counter, so predictable) and DuckDB's ``query()`` /
``query_table()``, which read a relation named by a string. The counter is peeked here to
aim the attack exactly; tests/security/test_view_grants.py has the same refusals through
the Postgres protocol."""

from __future__ import annotations

import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import scan
from tarndb.pgwire import roles


@pytest.fixture
def carol(db: tarndb.Database) -> tarndb.Session:
    roles.install(db)  # GRANT and the privilege check, as `tarndb serve` installs them
    db.execute("CREATE TABLE ws1.staff (id INT, name TEXT, salary INT, hidden BOOLEAN)")
    db.execute("INSERT INTO ws1.staff VALUES (1, '1', 100, false), (3, 'boss', 999, true)")
    db.execute("CREATE TABLE ws1.__x7 (v INT)")  # a lake table may still be named __...
    db.execute("INSERT INTO ws1.__x7 VALUES (7)")
    db.execute("CREATE VIEW ws1.pub AS SELECT id, name FROM ws1.staff WHERE NOT hidden")
    db.execute("CREATE ROLE carol LOGIN PASSWORD 'carol-pw'")
    db.execute("GRANT USAGE ON SCHEMA ws1 TO carol")
    db.execute("GRANT SELECT ON ws1.pub, ws1.__x7 TO carol")
    s = db.session(workspace="ws1", allowed_workspaces={"ws1", "public"})
    s.acl_role = "carol"  # what the Postgres front end sets for a role's login
    return s


def test_scope_names_and_relation_functions_are_refused(carol: tarndb.Session) -> None:
    assert carol.execute("SELECT * FROM ws1.pub").rows == [(1, "1")]
    attacks = ["SELECT x.* FROM ws1.pub p, {n} x",
               "SELECT (SELECT max(salary) FROM {n}) FROM ws1.pub",
               "SELECT * FROM ws1.pub WHERE id IN (SELECT id FROM {n} WHERE hidden)"]
    for template in attacks:
        for step in range(1, 12):
            for prefix in ("__t", "__o"):
                # the counter's next value, plus what the statement takes before the table
                n = next(scan._counter) + step
                with pytest.raises(E.UndefinedTable):
                    carol.execute(template.format(n=f"{prefix}{n}"))
    for sql in ("SELECT x.* FROM ws1.pub p, query_table('__t1') x",
                "SELECT * FROM query('SELECT 1')",
                "SELECT x.* FROM ws1.pub p, LATERAL query_table('ws1.staff') x"):
        with pytest.raises(E.UndefinedFunction):
            carol.execute(sql)
    # a lake table named like the scope's names is still itself
    assert carol.execute("SELECT v FROM __x7").rows == [(7,)]
    assert carol.execute("SELECT p.id, x.v FROM ws1.pub p, __x7 x").rows == [(1, 7)]
