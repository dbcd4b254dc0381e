"""WHERE clauses of the VectorStore API's ``delete`` and ``search``, shared by the store over
a lake (``_store.py``) and the one over a server (``_remote.py``).

Deep Lake's ``filter`` is either ``{"column": value}`` (equalities, values bound as
parameters) or a SQL condition (taken as the user's SQL, as the seeds pass it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import FeatureNotSupported, InvalidParameterValue


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def filter_conditions(filter: dict[str, Any] | str | None, params: list[Any],  # noqa: A002
                      check_column: Callable[[str], object] | None = None) -> list[str]:
    """The conditions of ``filter``; its values are appended to ``params`` (numbered after
    what is there). ``check_column`` may refuse a column of a dict filter."""
    if isinstance(filter, dict):
        conds = []
        for col, value in filter.items():
            if check_column is not None:
                check_column(col)
            params.append(value)
            conds.append(f"{ident(col)} = ${len(params)}")
        return conds
    if isinstance(filter, str):
        return [f"({filter})"] if filter.strip() else []
    if filter is not None:
        raise FeatureNotSupported("filter must be a {column: value} dict or a SQL condition")
    return []


def delete_where(id_column: str, ids: Sequence[Any] | None,
                 filter: dict[str, Any] | str | None,  # noqa: A002
                 delete_all: bool | None, row_ids: Sequence[int] | None, query: str | None,
                 check_column: Callable[[str], object] | None = None
                 ) -> tuple[str, list[Any]] | None:
    """The WHERE clause (with its parameters) of ``VectorStore.delete``; None when ``ids``
    is empty (nothing to delete)."""
    if query is not None or row_ids is not None:
        raise FeatureNotSupported("delete by TQL query or row index is not supported; "
                                  "use ids= or filter=")
    conds: list[str] = []
    params: list[Any] = []
    if ids is not None:
        ids = list(ids)
        if not ids:
            return None
        marks = []
        for v in ids:
            params.append(v)
            marks.append(f"${len(params)}")
        conds.append(f"{ident(id_column)} IN ({', '.join(marks)})")
    conds += filter_conditions(filter, params, check_column)
    if not conds and not delete_all:
        raise InvalidParameterValue("delete() needs ids, filter or delete_all=True")
    return (" WHERE " + " AND ".join(conds) if conds else ""), params
