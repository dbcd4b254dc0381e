"""``tarndb.ray`` on a real local Ray cluster, as an operator runs one: ``ray start --head``
and a second node joined with ``ray start --address``, both on this machine (one CPU each),
driven by ``ray.init(address=...)`` from this process, against a real ``tarndb serve`` on
the lake. It reads a pinned table version with tasks on both nodes (rows equal SQL's),
writes a 100k-row dataset into a new table atomically (a driver killed part-way leaves no
table, a retry writes every row) and embeds a text column with the packaged model.

The other Ray tests use an in-process ``ray.init()``; this module is the multi-process one.
"""

from __future__ import annotations

import contextlib
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

import numpy as np
import pytest

pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'tarndb[ray]')")

import pyarrow as pa  # noqa: E402
import ray  # noqa: E402

import tarndb  # noqa: E402
import tarndb.ray as tray  # noqa: E402

from .conftest import Serve, free_port, lake_data_files, start_serve  # noqa: E402

# The cluster's workers cannot import this test module: its functions travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

#: Object store per node: small, so two nodes fit next to the servers on a small machine.
_OBJECT_STORE = 150 * 1024 * 1024

# Ray 2.5x+ has token authentication; a token left in ~/.ray/auth_token makes the GCS ask for
# it while clients that were not told to send it don't: this cluster runs without it.
_RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
            "HF_HUB_OFFLINE": "1"}


@dataclass
class Cluster:
    address: str
    nodes: set[str]
    temp_dir: Path


def _node_args() -> list[str]:
    """Every port a node listens on, free ones: two nodes (and other engineers' Ray
    clusters) share this machine, and Ray's fixed defaults would collide."""
    return ["--block", "--num-cpus=1", f"--object-store-memory={_OBJECT_STORE}",
            "--disable-usage-stats", "--node-ip-address=127.0.0.1",
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
        socket.create_connection(("127.0.0.1", port), 0.5).close()
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
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = [temp_dir / "head.log", temp_dir / "node2.log"]
    with pytest.MonkeyPatch.context() as mp:
        for k, v in _RAY_ENV.items():
            mp.setenv(k, v)
        try:
            with open(logs[0], "wb") as out:
                procs.append(subprocess.Popen(
                    [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false",
                     f"--dashboard-port={free_port()}", f"--temp-dir={temp_dir}",
                     *_node_args()],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            _wait("the head's GCS did not listen", lambda: _gcs_listening(port), procs,
                  logs[:1])
            with open(logs[1], "wb") as out:
                procs.append(subprocess.Popen(
                    [ray_bin, "start", f"--address={address}", *_node_args()],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            ray.data.DataContext.get_current().enable_progress_bars = False

            def alive() -> set[str]:
                return {n["NodeID"] for n in ray.nodes() if n["Alive"]}

            _wait("the second node did not join", lambda: len(alive()) == 2, procs, logs)
            yield Cluster(address, alive(), temp_dir)
        finally:
            ray.shutdown()
            _stop(procs, temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One ``tarndb serve`` for the module, on a local lake the cluster's nodes share."""
    base = tmp_path_factory.mktemp("raycluster")
    srv = start_serve(base / "lake", base / "serve.log")
    yield srv
    srv.stop()


def _tag_node(batch: pa.Table) -> pa.Table:
    time.sleep(0.2)  # a task long enough that one node cannot take every block alone
    node = ray.get_runtime_context().get_node_id()
    return batch.append_column("node", pa.array([node] * batch.num_rows, pa.string()))


def _rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ids = batch["id"]
    return {"id": ids, "body": np.array([f"row {i}" for i in ids]),
            "emb": np.stack([ids.astype("float32"), np.ones(len(ids), "float32")], axis=1)}


def test_reads_a_pinned_version_on_both_nodes(cluster: Cluster, server: Serve) -> None:
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
        c.execute("CREATE TABLE ws.docs (id BIGINT PRIMARY KEY, body TEXT, emb FLOAT4[])")
        c.execute("INSERT INTO ws.docs VALUES (-1, 'from sql', ARRAY[0, 0]::float4[])")
    # Eight blocks written by the cluster: eight fragments, read by tasks on both nodes.
    ds = ray.data.range(8000, override_num_blocks=8).map_batches(_rows)
    pinned = tray.write_table(ds, "ws.docs", server.lake).version
    with server.connect() as c:
        c.execute("DELETE FROM ws.docs WHERE id % 7 = 0")
        c.execute("UPDATE ws.docs SET body = 'changed' WHERE id < 100")
        c.execute("INSERT INTO ws.docs VALUES (9000, 'after the pin', NULL)")
        want = c.execute(f'SELECT id, body, emb FROM ws."docs@{pinned}" ORDER BY id').fetchall()
        now = c.execute("SELECT count(*) FROM ws.docs").fetchone()
    assert len(want) == 8001 and now is not None and now[0] < 8001

    # One block per fragment (Ray would split the 8k rows into ~200 tiny blocks).
    got_ds = tray.read_table(server.lake, "ws.docs", version=pinned, override_num_blocks=8)
    assert got_ds.schema().names == ["id", "body", "emb"]  # no __rid
    tagged = pa.concat_tables(ray.get(got_ds.map_batches(
        _tag_node, batch_format="pyarrow").to_arrow_refs())).sort_by("id")
    assert tagged.column("id").to_pylist() == [w[0] for w in want]
    assert tagged.column("body").to_pylist() == [w[1] for w in want]
    assert [[float(x) for x in e] for e in tagged.column("emb").to_pylist()] == \
        [[float(x) for x in w[2]] for w in want]
    assert set(tagged.column("node").to_pylist()) == cluster.nodes


def test_a_killed_create_leaves_no_table_and_a_retry_writes_100k_rows(
        cluster: Cluster, server: Serve, tmp_path: Path) -> None:
    n = 100_000
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import numpy as np, ray, tarndb.ray
        ray.init(address={cluster.address!r}, log_to_driver=False, configure_logging=False)
        def slow(b):
            time.sleep(0.4)
            return {{"id": b["id"], "body": np.array([f"row {{i}}" for i in b["id"]])}}
        ds = ray.data.range({n}, override_num_blocks=40).map_batches(slow)
        tarndb.ray.write_table(ds, "ws.big", {str(server.lake)!r}, mode="create",
                               primary_key=["id"], batch_size=2500)
        print("COMMITTED", flush=True)
    """))
    log_path = tmp_path / "driver.log"
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

    # The same write again, to the end: every row in one step.
    ds = ray.data.range(n, override_num_blocks=8).map_batches(_rows)
    res = tray.write_table(ds, "ws.big", server.lake, mode="create", primary_key=["id"])
    assert res.rows == n and res.fragments >= 8
    with server.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id), min(id), max(id), "
                         "sum(emb[1]::float8) FROM ws.big").fetchone() == \
            (n, n, 0, n - 1, float(n * (n - 1) // 2))
        with pytest.raises(Exception, match="duplicate key"):
            c.execute("INSERT INTO ws.big (id, body) VALUES (5, 'dup')")
    with pytest.raises(tarndb.errors.DuplicateTable):
        tray.write_table(ds, "ws.big", server.lake, mode="create")


def test_embeds_a_text_column_with_the_packaged_model(cluster: Cluster, server: Serve) -> None:
    with server.connect() as c:
        c.execute("CREATE SCHEMA IF NOT EXISTS ws")
        c.execute("CREATE TABLE ws.notes (id INT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO ws.notes SELECT i, 'note ' || i || ' about ' || CASE WHEN "
                  "i % 2 = 0 THEN 'sailing boats' ELSE 'mountain walks' END "
                  "FROM generate_series(1, 80) t(i)")
    res = tray.embed_table(server.lake, "ws.notes", "body", into="ws.notes_emb",
                           chunk_rows=40, batch_size=10)
    assert (res.rows, res.chunks, res.skipped) == (80, 2, 0)
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
