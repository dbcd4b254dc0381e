"""Three ``tarndb serve`` processes on one lake (a local directory), with psycopg and HTTP
clients spread across them. Every test asserts exact counts: no increment lost, one winner
per key, no id handed out twice, a deleted row stays deleted, a write acknowledged by one
server is seen by the next statement on every other, tokens and tables made on one server
work on the others at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from psycopg import errors as pe

from tarndb.api.tokens import CACHE_TTL_S

from .conftest import Serve, start_serve
from .test_writers import _run_threads

TOKEN = "tdb_conc_admin_0123456789"


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Serve]]:
    root: Path = tmp_path_factory.mktemp("three")
    srvs: list[Serve] = []
    try:
        srvs.append(start_serve(root / "lake", root / "serve0.log"))  # makes the lake
        more: list[Serve] = []
        starters = [threading.Thread(target=lambda i=i: more.append(
            start_serve(root / "lake", root / f"serve{i}.log"))) for i in (1, 2)]
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        srvs.extend(more)
        assert len(srvs) == 3
        yield srvs
    finally:
        for s in srvs:
            s.stop()


class Http:
    """A client of one server's HTTP API (the seeds' query endpoint)."""

    def __init__(self, srv: Serve, token: str = TOKEN) -> None:
        self.base = f"http://127.0.0.1:{srv.http_port}"
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def query(self, sql: str, params: list[Any] | None = None, ws: str = "public"
              ) -> requests.Response:
        return self.s.post(f"{self.base}/workspaces/{ws}/tables/query",
                           json={"query": sql, "params": params or []}, timeout=120)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[list[Any]]:
        r = self.query(sql, params)
        assert r.status_code == 200, r.text
        out: list[list[Any]] = r.json()["rows"]
        return out


def test_increments_from_three_servers_over_both_protocols(three: list[Serve]) -> None:
    increments_across(three, clients=6, each=15)


def increments_across(three: list[Serve], clients: int, each: int) -> None:
    """``clients`` clients (every other one over HTTP) on the servers in turn, each adding 1
    to one row ``each`` times: nothing lost, every value returned once."""
    with three[0].connect() as c:
        c.execute("CREATE TABLE counters3 (id INT PRIMARY KEY, n INT NOT NULL)")
        c.execute("INSERT INTO counters3 VALUES (1, 0)")
    returned: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        srv = three[i % 3]
        if i % 2:  # half the clients over HTTP
            http = Http(srv)
            for _ in range(each):
                rows = http.rows("UPDATE counters3 SET n = n + 1 WHERE id = 1 RETURNING n")
                with lock:
                    returned.append(rows[0][0])
        else:
            with srv.connect() as c:
                for _ in range(each):
                    row = c.execute(
                        "UPDATE counters3 SET n = n + 1 WHERE id = 1 RETURNING n").fetchone()
                    assert row is not None
                    with lock:
                        returned.append(row[0])

    assert _run_threads(clients, work) == []
    total = clients * each
    for srv in three:
        with srv.connect() as c:
            assert c.execute("SELECT n FROM counters3").fetchone() == (total,)
    assert sorted(returned) == list(range(1, total + 1))  # each value returned once


def test_one_winner_per_key_and_unique_serials_across_three_servers(
        three: list[Serve]) -> None:
    with three[1].connect() as c:
        c.execute("CREATE TABLE k3 (id BIGSERIAL PRIMARY KEY, key INT UNIQUE, who INT)")
    wins: list[tuple[int, int, int]] = []  # key, who, id
    dups = [0]
    lock = threading.Lock()

    def work(i: int) -> None:
        srv = three[i % 3]
        http = Http(srv) if i % 2 else None
        conn = None if http else srv.connect()
        try:
            for key in range(10):
                sql = "INSERT INTO k3 (key, who) VALUES ($1, $2) RETURNING id"
                if http is not None:
                    r = http.query(sql, [key, i])
                    if r.status_code == 200:
                        with lock:
                            wins.append((key, i, r.json()["rows"][0][0]))
                    else:
                        assert r.json()["error"]["sqlstate"] == "23505", r.text
                        with lock:
                            dups[0] += 1
                else:
                    assert conn is not None
                    try:
                        row = conn.execute(sql.replace("$1", "%s").replace("$2", "%s"),
                                           [key, i]).fetchone()
                        assert row is not None
                        with lock:
                            wins.append((key, i, row[0]))
                    except pe.UniqueViolation:
                        with lock:
                            dups[0] += 1
        finally:
            if conn is not None:
                conn.close()

    assert _run_threads(9, work) == []
    assert sorted(k for k, _, _ in wins) == list(range(10))  # exactly one winner per key
    assert dups[0] == 10 * 8
    ids = [i for _, _, i in wins]
    assert len(set(ids)) == 10
    for srv in three:
        with srv.connect() as c:
            assert c.execute("SELECT key, who, id FROM k3 ORDER BY key").fetchall() == \
                sorted(wins)


def test_deleted_rows_stay_deleted_across_three_servers(three: list[Serve]) -> None:
    with three[2].connect() as c:
        c.execute("CREATE TABLE items3 (id INT PRIMARY KEY, v INT)")
        c.execute("INSERT INTO items3 SELECT i, 0 FROM generate_series(1, 30) AS t(i)")
    deleted: list[int] = []
    updated: dict[int, int] = {}
    lock = threading.Lock()

    def work(i: int) -> None:
        with three[i % 3].connect() as c:
            for k in range(1, 31):
                if (k + i) % 4 == 0:
                    if c.execute("DELETE FROM items3 WHERE id = %s", [k]).rowcount == 1:
                        with lock:
                            deleted.append(k)
                else:
                    n = c.execute("UPDATE items3 SET v = v + 1 WHERE id = %s", [k]).rowcount
                    with lock:
                        updated[k] = updated.get(k, 0) + n

    assert _run_threads(6, work) == []
    assert len(deleted) == len(set(deleted)), sorted(deleted)
    with three[0].connect() as c:
        left = dict(c.execute("SELECT id, v FROM items3").fetchall())
    assert set(left).isdisjoint(deleted)
    assert set(left) | set(deleted) == set(range(1, 31))
    for k, v in left.items():  # every acknowledged update of a surviving row is there
        assert v == updated.get(k, 0), (k, v, updated.get(k))


def test_writes_tables_and_tokens_are_seen_at_once_on_the_other_servers(
        three: list[Serve]) -> None:
    conns = [s.connect() for s in three]
    try:
        conns[0].execute("CREATE TABLE vis3 (id INT PRIMARY KEY, body TEXT)")
        for i in range(15):
            writer = conns[i % 3]
            writer.execute("INSERT INTO vis3 VALUES (%s, %s)", [i, f"r{i}"])
            for reader in conns:  # the next statement on every server sees the row
                assert reader.execute("SELECT count(*), max(id) FROM vis3").fetchone() == \
                    (i + 1, i)
        # A new constraint on an existing table reaches the other servers within the stated
        # bound (docs/operations.md: 0.25 s, the catalog's refresh interval).
        conns[1].execute("CREATE UNIQUE INDEX vis3_body ON vis3 (body)")
        time.sleep(0.3)
        with pytest.raises(pe.UniqueViolation):
            conns[2].execute("INSERT INTO vis3 VALUES (100, 'r5')")
    finally:
        for c in conns:
            c.close()
    # A token minted on one server works on the others' HTTP at once; revoked, it stops.
    admin = Http(three[0])
    r = admin.s.post(f"{admin.base}/tokens", json={"role": "read", "workspaces": ["public"],
                                                    "name": "fleet"}, timeout=60)
    assert r.status_code == 201, r.text
    token, token_id = r.json()["token"], r.json()["id"]
    for srv in three[1:]:
        assert Http(srv, token).rows("SELECT count(*) FROM vis3") == [[15]]
        denied = Http(srv, token).query("DELETE FROM vis3")
        assert denied.status_code in (401, 403), denied.text
    assert admin.s.delete(f"{admin.base}/tokens/{token_id}", timeout=60).status_code in (
        200, 204)
    assert Http(three[0], token).query("SELECT 1").status_code == 401  # at once here
    revoked = time.monotonic()
    for srv in three[1:]:  # elsewhere within the token cache's TTL (tokens.CACHE_TTL_S)
        while Http(srv, token).query("SELECT 1").status_code != 401:
            assert time.monotonic() - revoked < CACHE_TTL_S + 1.0
            time.sleep(0.1)


def test_a_key_deleted_on_one_server_is_free_on_the_others(three: list[Serve]) -> None:
    with three[0].connect() as a, three[1].connect() as b:
        a.execute("CREATE TABLE freed (id INT PRIMARY KEY)")
        a.execute("INSERT INTO freed VALUES (1)")
        b.execute("INSERT INTO freed VALUES (2)")  # b has looked at the table
        a.execute("DELETE FROM freed WHERE id = 1")
        b.execute("INSERT INTO freed VALUES (1)")
        assert b.execute("SELECT id FROM freed ORDER BY id").fetchall() == [(1,), (2,)]
