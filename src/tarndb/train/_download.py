"""Download a training set's files into a folder: in parallel, resumably, verified by sha256.

Each file is written to ``<id><ext>.part`` and renamed into place only once its size and
sha256 match the spec, so a file under its final name is always complete. A rerun keeps the
files already in place (after re-hashing them), continues ``.part`` files from where they
stopped (an HTTP range request), and fetches the rest. A file shared by several rows is
fetched once.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ._source import FileReader
from ._spec import ChecksumMismatch, FileRef

_EXT_RE = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_HASH_CHUNK = 1 << 20


def file_name(ref: FileRef) -> str:
    """``<file id><extension>``: unique per file, and the extension keeps tools that look at
    suffixes (image viewers, ffmpeg) happy."""
    ext = os.path.splitext(ref.filename)[1].lower()
    if not _EXT_RE.match(ext):
        ext = mimetypes.guess_extension(ref.content_type.split(";")[0].strip()) or ""
    return f"{ref.id}{ext}"


def sha256_file(path: Path, h: hashlib._Hash | None = None) -> hashlib._Hash:
    h = h or hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h


def fetch(reader: FileReader, ref: FileRef, directory: Path, verify: bool = True,
          retries: int = 3) -> Path:
    """One file into ``directory`` (see the module docstring); returns its path. A dropped
    connection resumes from the bytes already written, up to ``retries`` times."""
    final = directory / file_name(ref)
    if final.exists():
        if final.stat().st_size == ref.size and (
                not verify or sha256_file(final).hexdigest() == ref.sha256):
            return final
        final.unlink()  # a different or damaged file under our name: fetch it again
    part = final.with_name(final.name + ".part")
    restarted = False
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if offset > ref.size:
            part.unlink()
            offset = 0
        h = sha256_file(part) if offset else hashlib.sha256()
        try:
            with open(part, "ab") as out:
                if offset < ref.size:
                    for chunk in reader.iter_bytes(ref, start=offset):
                        h.update(chunk)
                        out.write(chunk)
        except reader.transient:
            failures += 1
            if failures > retries:
                raise
            time.sleep(min(0.25 * 2 ** failures, 5.0))
            continue
        size = part.stat().st_size
        if size == ref.size and h.hexdigest() == ref.sha256:
            os.replace(part, final)
            return final
        part.unlink()  # the resumed prefix may be what was wrong: start over once
        if restarted:
            raise ChecksumMismatch(
                f"file {ref.id} ({ref.filename}) downloaded as {size} bytes with sha256 "
                f"{h.hexdigest()[:16]}..., but the training set recorded {ref.size} bytes "
                f"with sha256 {ref.sha256[:16]}...")
        restarted = True


def download_all(reader: FileReader, refs: list[FileRef], directory: Path, *,
                 workers: int = 8, verify: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
    """Every distinct file of ``refs`` into ``directory``; returns file id -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    unique = list({r.id: r for r in refs}.values())
    out: dict[str, Path] = {}
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers),
                            thread_name_prefix="tarndb-download") as pool:
        futures = {pool.submit(fetch, reader, r, directory, verify): r for r in unique}
        try:
            for fut, ref in futures.items():
                out[ref.id] = fut.result()
                done += 1
                if progress is not None:
                    progress(done, len(unique))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return out
