"""Translate DuckDB's exceptions into tarndb errors with the right SQLSTATE."""

from __future__ import annotations

import errno
import re

import duckdb

from .. import errors as E
from .udf import error_from_message

_LINE = re.compile(r"\n\s*LINE \d+:.*", re.DOTALL)
_PREFIX = re.compile(r"^[A-Za-z ]+Error: ")
_INT_RANGE = re.compile(r"^Type \S+ with value \S+ can't be cast because the value is out of "
                        r"range for the destination type (INT16|INT32|INT64)\b")
_INT_NAMES = {"INT16": "smallint", "INT32": "integer", "INT64": "bigint"}


def clean_message(msg: str) -> str:
    msg = _LINE.sub("", msg)
    msg = _PREFIX.sub("", msg.strip())
    # Views are an implementation detail; never show their generated names.
    msg = re.sub(r'"?__t\d+"?', "table", msg)
    return msg.strip()


def translate(exc: BaseException) -> E.TarnError:
    if isinstance(exc, E.TarnError):
        return exc
    # An error raised inside a Python UDF (embed(), deep_memory()) keeps its own SQLSTATE.
    inner = error_from_message(str(exc))
    if inner is not None:
        return inner
    msg = clean_message(str(exc))
    low = msg.lower()
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) \
            or "no space left on device" in low or "os error 28" in low:
        # Lance and DuckDB report a full disk in their own words; PostgreSQL says 53100.
        return E.DiskFull("could not write to the lake: no space left on device")
    if isinstance(exc, duckdb.OutOfMemoryException):
        first = msg.split("\n", 1)[0]
        if "max_temp_directory_size" in msg:
            # Spilling went past the temp limit (the session's, engine/limits.py).
            m = re.search(r"/\s*([\d.]+\s*[KMGT]?i?B|\d+ bytes)\s+used", first)
            limit = _kb(m.group(1)) if m else None
            return E.ConfigurationLimitExceeded(
                "temporary file size exceeds temp_file_limit"
                + (f" ({limit}kB)" if limit is not None else ""), detail=first)
        return E.OutOfMemory("out of memory", detail=first,
                             hint="Lower the statement's memory needs, or raise "
                             "tarndb.memory_limit (superusers) or the server's limits.")
    if isinstance(exc, duckdb.InterruptException):
        return E.QueryCanceled("canceling statement due to user request")
    if isinstance(exc, duckdb.PermissionException):
        return E.InsufficientPrivilege(msg)
    if isinstance(exc, duckdb.ParserException):
        return E.SyntaxError_(msg)
    if isinstance(exc, duckdb.ConversionException):
        m = _INT_RANGE.search(msg)
        if m:
            # A number cast to a smaller integer type: PostgreSQL's words for it.
            return E.NumericValueOutOfRange(f"{_INT_NAMES[m.group(1)]} out of range")
        if "out of range" in low or "overflow" in low:
            return E.NumericValueOutOfRange(msg)
        return E.InvalidTextRepresentation(msg)
    if isinstance(exc, duckdb.OutOfRangeException):
        return E.NumericValueOutOfRange(msg)
    if isinstance(exc, duckdb.BinderException):
        m = re.search(r'column "?([^"\s]+)"? not found', msg, re.IGNORECASE) or \
            re.search(r'Referenced column "([^"]+)"', msg)
        if m:
            return E.UndefinedColumn(f'column "{m.group(1)}" does not exist', column=m.group(1))
        if "no function matches" in low or "function" in low and "does not exist" in low:
            return E.UndefinedFunction(msg)
        if "must appear in the group by" in low:
            return E.GroupingError(msg)
        if "cannot" in low and "cast" in low:
            return E.InvalidTextRepresentation(msg)
        if "not supported" in low:
            return E.FeatureNotSupported(msg)
        return E.SyntaxErrorOrAccessRuleViolation(msg)
    if isinstance(exc, duckdb.CatalogException):
        if "function" in low:
            return E.UndefinedFunction(msg)
        if "table" in low and "does not exist" in low:
            return E.UndefinedTable(msg)
        if "type" in low and "does not exist" in low:
            return E.UndefinedObject(msg)
        return E.SyntaxErrorOrAccessRuleViolation(msg)
    if isinstance(exc, duckdb.InvalidInputException):
        if low.startswith("division by zero"):
            return E.DivisionByZero("division by zero")  # PostgreSQL's words and 22012
        if re.fullmatch(r"bit string length \d+ does not match type bit\(\d+\)", msg):
            return E.StringDataLengthMismatch(msg)
        if re.fullmatch(r"bit string too long for type bit varying\(\d+\)", msg):
            return E.StringDataRightTruncation(msg)
        if re.fullmatch(r'relation ".*" does not exist', msg):
            return E.UndefinedTable(msg)  # a '...'::regclass of an unknown name: 42P01
        if re.fullmatch(r'function ".*" does not exist', msg):
            return E.UndefinedFunction(msg)  # '...'::regproc (sql/pgprocs.py)
        if re.fullmatch(r'more than one function named ".*"', msg):
            return E.AmbiguousFunction(msg)
        if re.fullmatch(r'".*" is an aggregate function', msg):
            return E.WrongObjectType(msg)
        return E.DataError(msg)
    if isinstance(exc, duckdb.ConstraintException):
        return E.IntegrityError(msg)
    if isinstance(exc, duckdb.NotImplementedException):
        return E.FeatureNotSupported(msg)
    if isinstance(exc, duckdb.TypeMismatchException):
        return E.DataError(msg)
    return E.InternalError(msg)


def _kb(size: str) -> int | None:
    """kB in a size as DuckDB prints it (``30.5 MiB``, ``0 bytes``)."""
    m = re.match(r"([\d.]+)\s*([KMGT]?)i?B|([\d.]+) bytes", size.strip())
    if not m:
        return None
    if m.group(3) is not None:
        return int(float(m.group(3)) / 1024)
    scale = {"": 1 / 1024, "K": 1, "M": 1024, "G": 1 << 20, "T": 1 << 30}[m.group(2)]
    return round(float(m.group(1)) * scale)
