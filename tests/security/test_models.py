"""Models from SQL come only from the operator's registry: paths and path-like prefixes are
refused with 42501 before anything is looked up (so errors say nothing about the host's files
and nothing is loaded or cached), and ``openai:`` models only where the operator enabled them."""

from __future__ import annotations

import psycopg
import pytest
from _security_support import Stack

from tarndb.embeddings import _registry

PATHS = ["st:/etc", "st:/usr/lib/python3", "sentence-transformers:/tmp", "tokens:/etc",
         "colpali:/root", "colqwen2:/var", "/etc", "./models", "../x", "~/.cache/huggingface",
         "models/minilm"]


@pytest.mark.parametrize("token", ["admin", "write", "read"])
@pytest.mark.parametrize("name", PATHS + ["openai:text-embedding-3-small"])
def test_model_paths_refused_over_http(stack: Stack, token: str, name: str) -> None:
    r = stack.http_sql(token, f"SELECT embed('{name}', 'hello')")
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["sqlstate"] == "42501"
    assert name not in r.text and "/etc" not in r.text


@pytest.mark.parametrize("fn", ["embed", "embed_multi"])
def test_model_paths_refused_over_pgwire(stack: Stack, fn: str) -> None:
    for conn in (stack.pg_token("write"), stack.pg()):
        with conn as c:
            for name in PATHS:
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
                    c.execute(f"SELECT {fn}('{name}', 'hello')")
                assert name not in str(e.value)


def test_spellings_are_not_cached(stack: Stack) -> None:
    before = stack.rss_kb()
    with stack.pg_token("read") as c:
        for i in range(60):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(f"SELECT embed('st:/tmp/{'./' * i}x', 'hello')")
    assert (stack.rss_kb() - before) / 1024 < 20


def test_registered_and_builtin_models_still_work(stack: Stack) -> None:
    r = stack.http_sql("read", "SELECT array_length(embed('minilm', 'hello'), 1)")
    assert r.status_code == 200 and r.json()["rows"] == [[384]], r.text
    r = stack.http_sql("read", "SELECT array_length(embed('hello'), 1)")
    assert r.json()["rows"] == [[384]], r.text
    r = stack.http_sql("read", "SELECT embed('no-such-model', 'hello')")
    assert r.status_code == 400 and r.json()["error"]["sqlstate"] == "22023"


def test_openai_models_follow_the_operator_setting() -> None:
    name = "openai:text-embedding-3-small"
    _registry.allow_openai_in_sql(False)
    with pytest.raises(Exception) as e:
        _registry.check_sql_name(name)
    assert getattr(e.value, "sqlstate", None) == "42501"
    _registry.allow_openai_in_sql(True)
    try:
        _registry.check_sql_name(name)  # allowed: no error
        with pytest.raises(Exception) as e:
            _registry.check_sql_name("st:/etc")  # paths stay refused
        assert getattr(e.value, "sqlstate", None) == "42501"
    finally:
        _registry.allow_openai_in_sql(False)


@pytest.mark.parametrize("endpoint", ["train", "evaluate"])
@pytest.mark.parametrize("name", ["st:/etc", "/usr/lib", "openai:text-embedding-3-small"])
def test_deep_memory_jobs_take_no_model_paths(stack: Stack, endpoint: str, name: str) -> None:
    import requests

    r = requests.post(f"{stack.http_url}/workspaces/ws1/deep_memory/{endpoint}",
                      headers=stack.headers("write"), timeout=60, verify=stack.verify,
                      json={"table": "t", "embedding_column": "emb", "embedding_model": name,
                            "queries": ["q"], "relevance": [[[1, 1.0]]]})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["sqlstate"] == "42501" and name not in r.text
    jobs = requests.get(f"{stack.http_url}/workspaces/ws1/jobs", headers=stack.headers("write"),
                        timeout=60, verify=stack.verify).json()
    assert all(j.get("embedding_model") != name for j in (jobs.get("jobs", jobs)
                                                          if isinstance(jobs, dict) else jobs))
