"""The file store on an S3 lake (moto's S3 server): the same streaming writes, metadata in
Lance, deletes that remove the object."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tarndb.errors import NotFound
from tarndb.files import FileStore

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k",
                          aws_secret_access_key="s", region_name="us-east-1")
    client.create_bucket(Bucket="lake")
    yield endpoint, client
    srv.stop()


@pytest.fixture()
def store(s3: tuple[str, Any], request: pytest.FixtureRequest) -> Iterator[FileStore]:
    import tarndb

    endpoint, _ = s3
    db = tarndb.open(f"s3://lake/{request.node.name}", storage_options={
        "aws_endpoint": endpoint, "aws_access_key_id": "k", "aws_secret_access_key": "s",
        "aws_region": "us-east-1", "allow_http": "true"})
    yield FileStore.from_db(db)
    db.close()


def _blob_keys(client: Any, prefix: str) -> list[str]:
    resp = client.list_objects_v2(Bucket="lake", Prefix=prefix)
    return [o["Key"] for o in resp.get("Contents", []) if not o["Key"].endswith("/")]


def test_s3_roundtrip_and_delete(store: FileStore, s3: tuple[str, Any],
                                 request: pytest.FixtureRequest) -> None:
    _, client = s3
    data = os.urandom(3 << 20) + b"end"
    meta = store.put("ws", data, "a.bin")
    assert meta.sha256 == hashlib.sha256(data).hexdigest()
    prefix = f"{request.node.name}/ws/_files/"
    assert _blob_keys(client, prefix) == [f"{prefix}{str(meta.id)[:2]}/{meta.id}"]
    store._cache.clear()
    assert store.get("ws", meta.id) == meta
    assert b"".join(store.iter_range(meta, 1 << 20, (1 << 20) + 100)) == \
        data[1 << 20:(1 << 20) + 100]
    assert store.read_bytes("ws", meta.id) == data
    assert [m.id for m in store.list("ws")[0]] == [meta.id]
    store.delete("ws", meta.id)
    assert _blob_keys(client, prefix) == []
    with pytest.raises(NotFound):
        store.get("ws", meta.id)


def test_s3_abort_leaves_no_object(store: FileStore, s3: tuple[str, Any],
                                   request: pytest.FixtureRequest) -> None:
    _, client = s3
    w = store.writer("ws", "partial.bin")
    w.write(b"x" * (6 << 20))  # past one multipart part
    w.abort()
    assert _blob_keys(client, f"{request.node.name}/ws/_files/") == []
    assert store.list("ws") == ([], 0)
