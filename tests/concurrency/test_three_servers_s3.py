"""Three ``tarndb serve`` processes on one S3 lake (moto), psycopg and HTTP clients spread
across them: the same exact counts as on a local directory (test_three_servers.py), with
commits serialised by the conditional-put lease on the bucket instead of a file lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Serve, start_serve
from .test_three_servers import increments_across
from .test_three_servers import (
    test_one_winner_per_key_and_unique_serials_across_three_servers as _keys,
)


@pytest.fixture(scope="module")
def three_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Serve]]:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    root: Path = tmp_path_factory.mktemp("three_s3")
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id="k",
                 aws_secret_access_key="s", region_name="us-east-1"
                 ).create_bucket(Bucket="three-bucket")
    lake = "s3://three-bucket/lake"
    srvs: list[Serve] = []
    try:
        srvs.append(start_serve(lake, root / "s0.log", env))  # makes the lake
        more: list[Serve] = []
        starters = [threading.Thread(target=lambda i=i: more.append(
            start_serve(lake, root / f"s{i}.log", env))) for i in (1, 2)]
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
        srv.stop()


def test_increments_from_three_servers_on_one_s3_lake(three_s3: list[Serve]) -> None:
    # Fewer than on a directory: every commit to the one hot row takes the bucket's lease.
    increments_across(three_s3, clients=3, each=5)


def test_keys_and_serials_from_three_servers_on_one_s3_lake(three_s3: list[Serve]) -> None:
    _keys(three_s3)
