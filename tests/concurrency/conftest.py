"""Real ``tarndb serve`` processes over one lake, for the concurrency suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from _ports import free_port

PASSWORD = "conc-pw"


@dataclass
class Serve:
    lake: Path
    pg_port: int
    http_port: int
    proc: subprocess.Popen[bytes]
    log: Path
    extra: list[str] = field(default_factory=list)

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.pg_port, user="postgres",
                               password=PASSWORD, dbname="postgres", sslmode="require",
                               autocommit=autocommit, connect_timeout=20)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_serve(lake: Path | str, log: Path, env_extra: dict[str, str] | None = None) -> Serve:
    pg, http = free_port(), free_port()
    env = dict(os.environ, TARNDB_PASSWORD=PASSWORD, TARNDB_TOKEN="tdb_conc_admin_0123456789",
               **(env_extra or {}))
    out = open(log, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb", "serve", "--data", str(lake), "--host", "127.0.0.1",
         "--pg-port", str(pg), "--http-port", str(http)],
        stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    srv = Serve(Path(str(lake)), pg, http, proc, log)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError("tarndb serve exited:\n" + log.read_text())
        try:
            with srv.connect() as c:
                c.execute("SELECT 1")
            return srv
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                srv.stop()
                raise RuntimeError("tarndb serve did not start:\n" + log.read_text()) from None
            time.sleep(0.2)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[[int], list[Serve]]]:
    """``servers(n)`` starts n ``tarndb serve`` processes on one lake (the first one alone
    first, so the lake and its demo workspace exist before the others open it)."""
    started: list[Serve] = []
    lake = tmp_path / "lake"

    def start(n: int, env: dict[str, str] | None = None) -> list[Serve]:
        for _ in range(n):
            started.append(start_serve(lake, tmp_path / f"serve{len(started)}.log", env))
        return started[-n:]

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def s3_servers(tmp_path: Path) -> Iterator[Callable[[int], list[Serve]]]:
    """``s3_servers(n)``: n ``tarndb serve`` processes on one lake in a local S3 (moto)."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket="lake-bucket")
    started: list[Serve] = []

    def start(n: int) -> list[Serve]:
        for _ in range(n):
            started.append(start_serve("s3://lake-bucket/lake",
                                       tmp_path / f"s3serve{len(started)}.log", env))
        return started[-n:]

    yield start
    for s in started:
        s.stop()
    srv.stop()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A local Ray cluster (one CPU) for the module; yields its address."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Serve]:
    """One ``tarndb serve`` on a fresh lake."""
    srv = start_serve(tmp_path / "lake", tmp_path / "serve.log")
    yield srv
    srv.stop()


def lake_data_files(lake: Path, table: str) -> list[Path]:
    """The data files of ``ws.<table>`` on a local lake (committed or not)."""
    return sorted(lake.glob(f"ws/{table}*.lance/data/*.lance"))
