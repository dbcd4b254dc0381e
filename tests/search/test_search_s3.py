"""Indexes on an S3 lake (moto's S3 server on 127.0.0.1): build, persist, reopen, query."""

from __future__ import annotations

from collections.abc import Iterator

import lance
import numpy as np
import pyarrow as pa
import pytest

from tarndb.search import IndexManager, bm25_topk, maxsim_topk, vector_topk


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket="searchlake")
    yield {"aws_endpoint": endpoint, "aws_access_key_id": "testing",
           "aws_secret_access_key": "testing", "aws_region": "us-east-1",
           "allow_http": "true"}
    server.stop()


def test_indexes_on_s3(s3: dict[str, str]) -> None:
    rng = np.random.default_rng(0)
    n, d = 600, 8
    uri = "s3://searchlake/ws/t.lance"
    vecs = rng.standard_normal((n, d)).astype(np.float32)
    bags = [rng.standard_normal((3, d)).tolist() for _ in range(n)]
    texts = [f"row {i} " + ("東京 tokyo" if i % 50 == 0 else "other words") for i in range(n)]
    t = pa.table({"__rid": pa.array(np.arange(n), pa.int64()),
                  "emb": pa.array(list(vecs), pa.list_(pa.float32())),
                  "toks": pa.array(bags, pa.list_(pa.list_(pa.float32()))),
                  "body": texts})
    ds = lance.write_dataset(t, uri, storage_options=s3)
    mgr = IndexManager.open(uri, s3)
    mgr.create_index(ds, "emb_idx", "emb", "clustered", {"ann_min_rows": 256})
    mgr.create_index(ds, "toks_idx", "toks")
    mgr.create_index(ds, "body_idx", "body", "bm25")
    q = vecs[3]
    assert vector_topk(ds, "emb", q, 1).row_keys.tolist() == [3]
    assert "emb_idx" in vector_topk(ds, "emb", q, 5).plan
    assert bm25_topk(ds, "body", "東京", 20).row_keys.tolist() == list(range(0, n, 50))
    assert maxsim_topk(ds, "toks", bags[7], 1).row_keys.tolist() == [7]
    # A new manager (another server) reads the same state from the bucket.
    other = IndexManager(uri, s3)
    assert [i.name for i in other.list_indexes()] == ["body_idx", "emb_idx", "toks_idx"]
    assert other.bm25_topk(ds, "body", "tokyo", 3).plan.startswith("BM25 index body_idx")
    exact = vector_topk(ds, "emb", q, 10, exact=True)
    got = other.vector_topk(ds, "emb", q, 10)
    assert len(set(got.row_keys.tolist()) & set(exact.row_keys.tolist())) >= 9
    other.drop_index("body_idx")
    assert [i.name for i in IndexManager(uri, s3).list_indexes()] == ["emb_idx", "toks_idx"]
