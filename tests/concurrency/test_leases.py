"""Leases on the lake (storage/leases.py), which make background work run once across the
servers of one lake: exclusive, freed at once by ``kill -9`` on a local lake, expiring after a
dead or stalled holder on S3 (moto). test_job_takeover.py has a job taken over end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tarndb.storage.lake import Lake
from tarndb.storage.leases import Lease, holder_alive

_HOLDER = textwrap.dedent("""
    import sys, time
    from tarndb.storage.lake import Lake
    from tarndb.storage.leases import Lease
    lease = Lease(Lake(sys.argv[1]), "job:demo", ttl=float(sys.argv[2]))
    assert lease.try_acquire()
    print("HELD", flush=True)
    while lease.renew_if_due():
        time.sleep(0.1)
    print("LOST", flush=True)
""")


def _hold_in_child(uri: str, ttl: float, env: dict[str, str] | None = None
                   ) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, uri, str(ttl)],
                            stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "HELD"
    return proc


def test_local_lease_is_exclusive_and_freed_by_kill_9(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    holder = _hold_in_child(lake.uri, 30)
    try:
        mine = Lease(lake, "job:demo")
        assert not mine.try_acquire() and holder_alive(lake, "job:demo")
        assert Lease(lake, "job:other").try_acquire()  # other names are free
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert mine.try_acquire()  # at once: the kernel dropped the dead holder's lock
        # Within one process a lease is held once, too.
        assert not Lease(lake, "job:demo").try_acquire()
        mine.release()
        assert not holder_alive(lake, "job:demo")
    finally:
        holder.kill()


def test_s3_lease_expires_after_its_holder_dies(tmp_path: Path) -> None:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    try:
        host, port = srv.get_host_and_port()
        env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "k",
               "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="k",
                     aws_secret_access_key="s", region_name="us-east-1"
                     ).create_bucket(Bucket="lease-bucket")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            lake = Lake("s3://lease-bucket/lake")
            holder = _hold_in_child(lake.uri, 1.5, env)
            try:
                mine = Lease(lake, "job:demo", ttl=1.5)
                # The holder renews: its lease outlives several TTLs.
                deadline = time.monotonic() + 3.5
                while time.monotonic() < deadline:
                    assert not mine.try_acquire()
                    time.sleep(0.25)
                holder.send_signal(signal.SIGKILL)
                holder.wait(10)
                killed = time.monotonic()
                while not mine.try_acquire():
                    assert time.monotonic() - killed < 10
                    time.sleep(0.1)
                assert time.monotonic() - killed <= 1.5 + 1.0
            finally:
                holder.kill()
            # A holder that stalls past its TTL (SIGSTOP: a long GC pause, a partition) loses
            # the lease to a breaker, and finds out at its next renewal.
            mine.release()
            stalled = _hold_in_child(lake.uri, 0.9, env)
            try:
                stalled.send_signal(signal.SIGSTOP)
                time.sleep(1.3)
                breaker = Lease(lake, "job:demo", ttl=5)
                assert breaker.try_acquire()
                stalled.send_signal(signal.SIGCONT)
                assert stalled.stdout is not None
                assert stalled.stdout.readline().strip() == "LOST"
                assert breaker.renew() is True
                breaker.release()
            finally:
                stalled.kill()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    finally:
        srv.stop()
