"""Per-session memory and temp-space limits (engine/limits.py), against a real ``tarndb
serve`` started with small ones: 64 MB of memory and 32 MB of temp files per session, 256 MB
of each for the whole server.

A session past its temp limit gets PostgreSQL's 53400 ("temporary file size exceeds
temp_file_limit"), past its memory limit 53200, while another session's statement under its
own limit runs at the same time; a session may lower its limits, a non-superuser cannot
raise them (not by SET, not by startup options), a superuser can; the server's RSS stays
bounded and everything keeps working afterwards.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _security_support import ALICE_PASSWORD, Stack, seed, start_stack, stop_stack  # noqa: E402

# A sort of 5M strings needs ~100 MB: past 64 MB it spills, past 32 MB of temp it fails.
BIG_SORT = ("SELECT count(*) FROM (SELECT range::varchar AS s FROM range(5000000) "
            "ORDER BY s DESC) q")
# 1M strings: ~20 MB, within a session's 64 MB without spilling.
SMALL_SORT = ("SELECT count(*) FROM (SELECT range::varchar AS s FROM range(1000000) "
              "ORDER BY s DESC) q")
# array_agg cannot spill: 20M bigints (160 MB) do not fit in 64 MB.
BIG_ARRAY = "SELECT cardinality(array_agg(range)) FROM range(20000000)"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("session-limits")
    s = start_stack(base / "lake", {"TARNDB_MEMORY_LIMIT": "256MiB",
                                    "TARNDB_TEMP_LIMIT": "256MiB",
                                    "TARNDB_SESSION_MEMORY_LIMIT": "64MiB",
                                    "TARNDB_SESSION_TEMP_LIMIT": "32MiB"})
    try:
        seed(s)
        yield s
    finally:
        alive = s.proc.poll() is None
        stop_stack(s)
        assert alive, "tarndb serve died during the session limit tests"
        assert s.proc.returncode == 0, "tarndb serve did not shut down cleanly"


def _alice(stack: Stack, **extra: Any) -> psycopg.Connection[Any]:
    return stack.pg(user="alice", password=ALICE_PASSWORD, **extra)


def _sqlstate(c: psycopg.Connection[Any], sql: str) -> tuple[str | None, str]:
    try:
        c.execute(sql).fetchall()
    except psycopg.Error as e:
        return e.sqlstate, str(e)
    return None, ""


def test_past_its_temp_limit_a_session_gets_53400_while_another_runs(limited: Stack) -> None:
    out: dict[str, Any] = {}

    def big() -> None:
        with _alice(limited) as c:
            out["big"] = _sqlstate(c, BIG_SORT)
            out["after"] = c.execute("SELECT 41 + 1").fetchone()  # the session goes on

    def small() -> None:
        with limited.pg_token("write") as c:
            out["small"] = c.execute(SMALL_SORT).fetchone()

    threads = [threading.Thread(target=big), threading.Thread(target=small)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    state, message = out["big"]
    assert state == "53400", out
    assert "temporary file size exceeds temp_file_limit (32768kB)" in message
    assert out["after"] == (42,)
    assert out["small"] == (1_000_000,)
    assert limited.rows("ws1") == [(1, "ws1 row 1"), (2, "ws1 row 2")]


def test_past_its_memory_limit_a_session_gets_53200(limited: Stack) -> None:
    with _alice(limited) as c:
        state, message = _sqlstate(c, BIG_ARRAY)
        assert state == "53200", message
        assert c.execute(SMALL_SORT).fetchone() == (1_000_000,)
    # The HTTP API answers with the same SQLSTATE in its JSON error.
    r = limited.http_sql("write", BIG_SORT)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["sqlstate"] == "53400", r.text


def test_a_session_is_held_to_the_lower_limits_it_sets(limited: Stack) -> None:
    with _alice(limited) as c:
        assert c.execute("SHOW temp_file_limit").fetchone() == ("-1",)
        assert c.execute(SMALL_SORT).fetchone() == (1_000_000,)
        c.execute("SET tarndb.memory_limit = '16MB'")
        c.execute("SET temp_file_limit = 1024")  # kB, as in PostgreSQL
        assert c.execute("SHOW temp_file_limit").fetchone() == ("1MB",)
        assert c.execute("SHOW tarndb.memory_limit").fetchone() == ("16MB",)
        state, message = _sqlstate(c, SMALL_SORT)
        assert state == "53400", message
        assert "(1024kB)" in message
        c.execute("RESET temp_file_limit")
        c.execute("RESET tarndb.memory_limit")
        assert c.execute(SMALL_SORT).fetchone() == (1_000_000,)
        # The session's workspace and search path survive the change of engine.
        assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)


def test_a_non_superuser_cannot_raise_its_limits(limited: Stack) -> None:
    with _alice(limited) as c:
        for sql in ("SET temp_file_limit = '64MB'", "SET tarndb.memory_limit = '128MB'",
                    "SET temp_file_limit = '1TB'"):
            state, message = _sqlstate(c, sql)
            assert state == "42501", (sql, message)
            assert "permission denied to set parameter" in message
        assert c.execute("SHOW temp_file_limit").fetchone() == ("-1",)
        state, message = _sqlstate(c, BIG_SORT)
        assert state == "53400" and "(32768kB)" in message, message
    # Startup options are not checked like SET: the limit is clamped where it takes effect.
    with _alice(limited, options="-c temp_file_limit=200MB -c tarndb.memory_limit=200MB") as c:
        state, message = _sqlstate(c, BIG_SORT)
        assert state == "53400" and "(32768kB)" in message, message
    # Through the HTTP API a scoped token is no superuser either.
    r = limited.http_sql("write", "SET temp_file_limit = '64MB'")
    assert r.status_code == 403 and r.json()["error"]["sqlstate"] == "42501", r.text


def test_a_superuser_may_raise_them_up_to_the_servers(limited: Stack) -> None:
    with limited.pg() as c:
        assert _sqlstate(c, BIG_SORT)[0] == "53400"  # the default holds superusers too
        c.execute("SET temp_file_limit = '200MB'")
        assert c.execute(BIG_SORT).fetchone() == (5_000_000,)
        state, message = _sqlstate(c, "SET temp_file_limit = '1GB'")  # past the server's
        assert state == "22023", message


def test_rss_stays_bounded_under_concurrent_heavy_sessions(limited: Stack) -> None:
    """Six sessions each running statements that fill their 64 MB: the server's 256 MB
    budget admits four at a time, and the memory goes back when they end."""
    before = limited.rss_kb()
    peak = [before]
    done = threading.Event()
    states: list[str | None] = []

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], limited.rss_kb())
            time.sleep(0.02)

    def heavy(i: int) -> None:
        with _alice(limited) as c:
            for _ in range(2):
                states.append(_sqlstate(c, BIG_SORT if i % 2 else BIG_ARRAY)[0])

    sampler = threading.Thread(target=sample)
    sampler.start()
    workers = [threading.Thread(target=heavy, args=(i,)) for i in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    done.set()
    sampler.join()
    assert sorted(set(states), key=str) == ["53200", "53400"], states
    growth_mb = (peak[0] - before) / 1024
    # 4 x 64 MB admitted at once, plus engines (~6 MB each) and Arrow/Python overhead.
    assert growth_mb < 256 + 120, f"RSS grew by {growth_mb:.0f} MB"
    with _alice(limited) as c:
        assert c.execute(SMALL_SORT).fetchone() == (1_000_000,)
    time.sleep(0.5)
    after_mb = (limited.rss_kb() - before) / 1024
    print(f"RSS {before // 1024} MB before; peak +{growth_mb:.0f} MB; after +{after_mb:.0f} MB")
    assert after_mb < 120, f"RSS stayed {after_mb:.0f} MB above where it was"
