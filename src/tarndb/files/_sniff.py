"""Content-type detection for uploads that arrive without a useful type.

Only the first bytes of a file are looked at (the upload streams, the head is all we keep), so
the checks are magic numbers for binary formats and a UTF-8 heuristic for text.
"""

from __future__ import annotations

import mimetypes

#: How many leading bytes the store keeps for sniffing.
SNIFF_BYTES = 512

OCTET_STREAM = "application/octet-stream"

# Types a client sends when it does not know better; we sniff instead of trusting them.
_GENERIC = {"", OCTET_STREAM, "application/x-www-form-urlencoded", "binary/octet-stream"}


def _magic(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        return "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        # EBML: WebM declares its doctype near the start; anything else is Matroska.
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                   and head[1] & 0x06 != 0):
        return "audio/mpeg"
    return None


def _text(head: bytes) -> str | None:
    if not head or b"\x00" in head:
        return None
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may cut a multi-byte character in half; that is still text.
        if exc.start < len(body) - 3:
            return None
        text = body[: exc.start].decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "application/json"
    return "text/plain; charset=utf-8"


def sniff_content_type(head: bytes, filename: str | None = None) -> str:
    """Best content type for a file from its first bytes and, failing that, its name."""
    found = _magic(head)
    if found:
        return found
    if filename:
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        if guessed:
            return guessed
    return _text(head) or OCTET_STREAM


def choose_content_type(declared: str | None, head: bytes, filename: str | None) -> str:
    """The declared type unless it is missing or generic, else what the bytes say."""
    declared = (declared or "").strip()
    if declared.split(";")[0].strip().lower() not in _GENERIC:
        return declared
    return sniff_content_type(head, filename)
