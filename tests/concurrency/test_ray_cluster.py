"""``tarndb.ray`` on a real local Ray cluster, as an operator runs one: ``ray start --head``
and a second node joined with ``ray start --address``, both on this machine (one CPU each),
driven by programs that join it with ``ray.init(address=...)``, against a real
``tarndb serve`` on the lake. It reads a pinned table version with tasks on both nodes
(rows equal SQL's), writes a 100k-row dataset into a new table atomically (a driver killed
part-way leaves no table, a retry writes every row) and embeds a text column with the
packaged model (``tarndb embed --ray <head address>``).

Every Ray driver here is a Python process of its own that joins the cluster, as a job
would: this pytest process never calls ``ray.init`` (after another module's in-process
``ray.init()``/``ray.shutdown()``, Ray Data in the same process fails on a second cluster
with OwnerDiedError), and one driver is SIGKILLed part-way on purpose.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'tarndb[ray]')")

import ray.util  # noqa: E402

from _ports import free_port  # noqa: E402

from .conftest import PASSWORD, Serve, lake_data_files, start_serve  # noqa: E402

#: Object store per node: small, so two nodes fit next to the servers on a small machine.
_OBJECT_STORE = 150 * 1024 * 1024

# Ray 2.60 turns token authentication on where it finds a token (~/.ray/auth_token): a GCS
# started by `ray start` then refused this test's drivers. Nodes and drivers here all run
# with it off, so they agree whatever the machine holds.
_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
            "HF_HUB_OFFLINE": "1"}


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    logs: list[Path]


def _node_ip() -> str:
    """The address Ray gives this machine (what a driver on it connects from)."""
    return str(ray.util.get_node_ip_address())


def _node_args() -> list[str]:
    """Every port a node listens on, free ones: two nodes (and other engineers' Ray
    clusters) share this machine, and Ray's fixed defaults would collide."""
    return ["--block", "--num-cpus=1", f"--object-store-memory={_OBJECT_STORE}",
            "--disable-usage-stats", f"--node-ip-address={_node_ip()}",
            f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
            "--min-worker-port=0", "--max-worker-port=0"]  # 0: ports the OS picks


def _stop(procs: list[subprocess.Popen[bytes]], temp_dir: Path) -> None:
    """Stop the nodes this module started, and only them: each ``ray start --block`` leads
    its own process group (its GCS, raylet, agents and workers). ``ray stop`` would stop
    every Ray process on the machine."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 1.5  # the raylets exit; `ray start --block` may not
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.1, deadline - time.monotonic()))
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)
    # Anything of this cluster that left the groups (its command line names our temp dir).
    for pid in _cluster_pids(temp_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _cluster_pids(temp_dir: Path) -> list[int]:
    out = []
    needle = str(temp_dir).encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            out.append(int(d.name))
    return out


def _wait(what: str, done: Callable[[], bool], procs: list[subprocess.Popen[bytes]],
          logs: list[Path], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                raise RuntimeError(f"ray start exited ({p.returncode}):\n" + log.read_text())
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout:.0f} s:\n"
                               + "\n".join(log.read_text()[-3000:] for log in logs))
        time.sleep(0.2)


def _gcs_listening(port: int) -> bool:
    try:
        socket.create_connection((_node_ip(), port), 0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    # Short: Ray's Unix sockets live under it (107 bytes at most for a socket path).
    temp_dir = Path(tempfile.mkdtemp(prefix="tdbray", dir="/tmp"))
    ray_bin = str(Path(sys.executable).with_name("ray"))
    env = dict(os.environ, **_RAY_ENV)
    port = free_port()
    address = f"{_node_ip()}:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [temp_dir / "head.log", temp_dir / "node2.log"]
    try:
        with open(logs[0], "wb") as out:
            procs.append(subprocess.Popen(
                [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false",
                 f"--dashboard-port={free_port()}", f"--temp-dir={temp_dir}", *_node_args()],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        _wait("the head's GCS did not listen", lambda: _gcs_listening(port), procs, logs[:1])
        with open(logs[1], "wb") as out:
            procs.append(subprocess.Popen(
                [ray_bin, "start", f"--address={address}", *_node_args()],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
        yield Cluster(address, temp_dir, logs)
    finally:
        _stop(procs, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def driver_script(cluster: Cluster, body: str, result: Path, setup: str = "") -> str:
    """A driver program: joins ``cluster``, runs ``setup`` then ``body`` (which fills the
    dict ``out``), writes ``out`` as JSON to ``result``."""
    return textwrap.dedent(f"""
        import json, time
        import numpy as np, pyarrow as pa, pyarrow.parquet as pq, ray, ray.data
        import tarndb, tarndb.ray
        ray.init(address={cluster.address!r}, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        deadline = time.monotonic() + 60  # the second node may still be joining
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.monotonic() < deadline, "the second node did not join"
            time.sleep(0.2)
        out = {{"nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])}}
    """) + textwrap.dedent(setup) + textwrap.dedent(body) + textwrap.dedent(f"""
        with open({str(result)!r}, "w") as f:
            json.dump(out, f)
        print("DONE", flush=True)
    """)


def run_driver(cluster: Cluster, tmp: Path, body: str, setup: str = "",
               timeout: float = 120) -> dict[str, Any]:
    """Run a driver program to its end; returns its ``out``."""
    script, result, log = tmp / "driver.py", tmp / "driver.json", tmp / "driver.log"
    script.write_text(driver_script(cluster, body, result, setup))
    with open(log, "wb") as f:
        proc = subprocess.run([sys.executable, str(script)], stdout=f, stderr=subprocess.STDOUT,
                              env=dict(os.environ, **_RAY_ENV), timeout=timeout, check=False)
    assert proc.returncode == 0, log.read_text()[-6000:] + "".join(
        f.read_text()[-2000:] for f in cluster.logs)
    return dict(json.loads(result.read_text()))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One ``tarndb serve`` for the module, on a local lake the cluster's nodes share."""
    base = tmp_path_factory.mktemp("raycluster")
    srv = start_serve(base / "lake", base / "serve.log")
    yield srv
    srv.stop()


#: A Ray Data step making (id, body, emb) rows from ``ray.data.range``'s ids.
_ROWS = """
def rows(b):
    ids = b["id"]
    return {"id": ids, "body": np.array([f"row {i}" for i in ids]),
            "emb": np.stack([ids.astype("float32"), np.ones(len(ids), "float32")], axis=1)}
"""


def test_reads_a_pinned_version_on_both_nodes(cluster: Cluster, server: Serve,
                                              tmp_path: Path) -> None:
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
        c.execute("CREATE TABLE ws.docs (id BIGINT PRIMARY KEY, body TEXT, emb FLOAT4[])")
        c.execute("INSERT INTO ws.docs VALUES (-1, 'from sql', ARRAY[0, 0]::float4[])")
    # One job: eight blocks written by the cluster (eight fragments), rows changed through
    # the server after that version, then the version read back by tasks on both nodes.
    dsn = (f"host=127.0.0.1 port={server.pg_port} user=postgres password={PASSWORD} "
           "dbname=postgres sslmode=require")
    got = run_driver(cluster, tmp_path, setup=_ROWS, body=f"""
        import psycopg
        ds = ray.data.range(8000, override_num_blocks=8).map_batches(rows)
        pinned = out["version"] = tarndb.ray.write_table(ds, "ws.docs", {str(server.lake)!r}
                                                         ).version
        with psycopg.connect({dsn!r}, autocommit=True) as c:
            c.execute("DELETE FROM ws.docs WHERE id % 7 = 0")
            c.execute("UPDATE ws.docs SET body = 'changed' WHERE id < 100")
            c.execute("INSERT INTO ws.docs VALUES (9000, 'after the pin', NULL)")

        def tag_node(batch):
            time.sleep(0.2)  # a task long enough that one node cannot take every block alone
            node = ray.get_runtime_context().get_node_id()
            return batch.append_column("node", pa.array([node] * batch.num_rows, pa.string()))
        ds = tarndb.ray.read_table({str(server.lake)!r}, "ws.docs", version=pinned)
        out["names"] = ds.schema().names
        t = pa.concat_tables(ray.get(ds.map_batches(tag_node, batch_format="pyarrow")
                                     .to_arrow_refs()))
        pq.write_table(t, {str(tmp_path / "read.parquet")!r})
    """)
    pinned = int(got["version"])
    with server.connect() as c:
        want = c.execute(f'SELECT id, body, emb FROM ws."docs@{pinned}" ORDER BY id').fetchall()
        now = c.execute("SELECT count(*), count(*) FILTER (WHERE body = 'changed') "
                        "FROM ws.docs").fetchone()
    assert len(want) == 8001 and now is not None and now[0] < 8001 and now[1] > 0
    assert got["names"] == ["id", "body", "emb"]  # no __rid
    tagged = pq.read_table(tmp_path / "read.parquet").sort_by("id")
    assert tagged.column("id").to_pylist() == [w[0] for w in want]
    assert tagged.column("body").to_pylist() == [w[1] for w in want]
    assert [[float(x) for x in e] for e in tagged.column("emb").to_pylist()] == \
        [[float(x) for x in w[2]] for w in want]
    assert len(got["nodes"]) == 2
    assert set(tagged.column("node").to_pylist()) == set(got["nodes"])


def test_a_killed_create_leaves_no_table_and_a_retry_writes_100k_rows(
        cluster: Cluster, server: Serve, tmp_path: Path) -> None:
    n = 100_000
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
    script = tmp_path / "killed.py"
    script.write_text(driver_script(cluster, f"""
        def slow(b):
            time.sleep(0.4)
            return {{"id": b["id"], "body": np.array([f"row {{i}}" for i in b["id"]])}}
        ds = ray.data.range({n}, override_num_blocks=40).map_batches(slow)
        tarndb.ray.write_table(ds, "ws.big", {str(server.lake)!r}, mode="create",
                               primary_key=["id"], batch_size=2500)
        print("COMMITTED", flush=True)
    """, tmp_path / "killed.json"))
    log_path = tmp_path / "killed.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=log,
                                stderr=subprocess.STDOUT, env=dict(os.environ, **_RAY_ENV))
    try:
        deadline = time.monotonic() + 60
        # Killed once the workers wrote fragments of the new table's dataset.
        while len(lake_data_files(server.lake, "big")) < 3:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert "COMMITTED" not in log_path.read_text()
    assert len(lake_data_files(server.lake, "big")) >= 3
    with server.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'ws' "
                         "AND tablename = 'big'").fetchone() == (0,)
        with pytest.raises(Exception, match='relation "ws.big" does not exist|"big"'):
            c.execute("SELECT count(*) FROM ws.big")

    # The same write again, to the end: every row in one step; the name is then taken.
    res = run_driver(cluster, tmp_path, setup=_ROWS, body=f"""
        ds = ray.data.range({n}, override_num_blocks=8).map_batches(rows)
        r = tarndb.ray.write_table(ds, "ws.big", {str(server.lake)!r}, mode="create",
                                   primary_key=["id"])
        out["rows"], out["fragments"] = r.rows, r.fragments
        try:
            tarndb.ray.write_table(ds, "ws.big", {str(server.lake)!r}, mode="create")
        except tarndb.errors.DuplicateTable as e:
            out["again"] = e.sqlstate
    """)
    assert res["rows"] == n and res["fragments"] >= 8 and res["again"] == "42P07"
    with server.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id), min(id), max(id), "
                         "sum(emb[1]::float8) FROM ws.big").fetchone() == \
            (n, n, 0, n - 1, float(n * (n - 1) // 2))
        with pytest.raises(Exception, match="duplicate key"):
            c.execute("INSERT INTO ws.big (id, body) VALUES (5, 'dup')")


def test_embeds_a_text_column_with_the_packaged_model(cluster: Cluster, server: Serve,
                                                      tmp_path: Path) -> None:
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
        c.execute("CREATE TABLE ws.notes (id INT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO ws.notes SELECT i, 'note ' || i || ' about ' || CASE WHEN "
                  "i % 2 = 0 THEN 'sailing boats' ELSE 'mountain walks' END "
                  "FROM generate_series(1, 80) t(i)")
    # The operator's way: `tarndb embed --ray <head>` as the driver.
    out = subprocess.run([sys.executable, "-m", "tarndb", "embed", "ws.notes", "--column",
                          "body", "--into", "ws.notes_emb", "--chunk-rows", "40",
                          "--data", str(server.lake), "--ray", cluster.address],
                         capture_output=True, text=True, timeout=180,
                         env=dict(os.environ, **_RAY_ENV))
    assert out.returncode == 0, out.stderr[-6000:]
    assert "embedded 80 rows of ws.notes.body into ws.notes_emb in 2 commits (0 already " \
        "there)" in out.stdout, out.stdout
    with server.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM ws.notes_emb"
                         ).fetchone() == (80, 80)
        got = c.execute("SELECT e.embedding, embed(n.body) FROM ws.notes_emb e "
                        "JOIN ws.notes n USING (id) ORDER BY id").fetchall()
    assert len(got) == 80
    for ray_vec, sql_vec in got:
        a, b = np.asarray(ray_vec), np.asarray(sql_vec)
        assert a.shape == (384,)
        assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.999
