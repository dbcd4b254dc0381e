"""The file store: raw bytes on the lake by UUID, metadata as a Lance dataset per workspace."""

from ._sniff import choose_content_type, sniff_content_type
from ._store import (
    FILES_PG_TYPES,
    FILES_SCHEMA,
    BlobWriter,
    FileMeta,
    FileStore,
    FileTooLarge,
    check_workspace,
    clean_filename,
    parse_file_id,
)

__all__ = [
    "FILES_PG_TYPES",
    "FILES_SCHEMA",
    "BlobWriter",
    "FileMeta",
    "FileStore",
    "FileTooLarge",
    "check_workspace",
    "choose_content_type",
    "clean_filename",
    "parse_file_id",
    "sniff_content_type",
]
