"""Building HTTP/1.1 heads, and reading back the few fields the cores must honour."""

from __future__ import annotations

from collections.abc import Iterable

from h2books.http import REASONS
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.parser import HEAD_CHARS, TOKEN_CHARS

__all__ = [
    "CONTINUE_RESPONSE",
    "HeadInfo",
    "encode_fields",
    "error_response",
    "serialize_head",
]

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {status: reason.encode("latin-1") for status, reason in REASONS.items()}
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in _REASONS.items()
}
_STATUS_PREFIXES = (b"HTTP/1.1 ", b"HTTP/1.0 ")


def encode_fields(fields: Iterable[tuple[bytes, bytes]], out: list[bytes]) -> None:
    """Append ``name: value\\r\\n`` for each field to ``out``, validating all of them.

    Names must be tokens; values may not hold CR, LF, NUL or other CTLs (a
    response-splitting vector). Validation runs once over the joined names and
    joined values instead of once per field.
    """
    first = len(out)
    append = out.append
    for name, value in fields:
        append(name)
        append(b": ")
        append(value)
        append(b"\r\n")
    names = out[first::4]
    values = out[first + 2 :: 4]
    if not all(names) or b"".join(names).translate(None, TOKEN_CHARS):
        raise H1Error("invalid field name")
    if b"".join(values).translate(None, HEAD_CHARS):
        raise H1Error("CR, LF, NUL or another control character in a field value")


def serialize_head(
    status: int, fields: Iterable[tuple[bytes, bytes]], reason: bytes | None = None
) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` plus field lines, without the blank line."""
    line = _STATUS_LINES.get(status) if reason is None else None
    if line is None:
        if type(status) is not int or not 100 <= status <= 999:
            raise H1Error(f"invalid status code {status!r}")
        if reason is None:
            reason = _REASONS.get(status, b"")
        elif reason.translate(None, HEAD_CHARS):
            raise H1Error("control character in reason phrase")
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
    out = [line]
    encode_fields(fields, out)
    return b"".join(out)


def error_response(status: int, reason: str, head_only: bool = False) -> bytes:
    """A complete, connection-closing plain-text error response."""
    body = reason.encode("utf-8", "replace") + b"\n"
    status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status
    head = b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s\r\n" % (
        status_line,
        len(body),
        b"connection: close\r\n",
    )
    return head if head_only else head + body


class HeadInfo:
    """What a response head (from the runtime) says about its own framing."""

    __slots__ = (
        "close",
        "has_connection",
        "has_content_length",
        "lowered",
        "status",
        "transfer_encoding",
    )

    def __init__(self, head: bytes) -> None:
        if head[:9] not in _STATUS_PREFIXES or not head[9:12].isdigit() or head[12:13] != b" ":
            raise H1Error("response head must start with a status line")
        if not head.endswith(b"\r\n") or head.endswith(b"\r\n\r\n"):
            raise H1Error("response head must end with one CRLF (the core adds the blank line)")
        self.status = int(head[9:12])
        self.transfer_encoding: bytes | None = None
        self.has_connection = False
        self.close = False
        self.lowered = lowered = head.lower()
        # Screen with a substring test first: few heads name these fields.
        self.has_content_length = b"\ncontent-length:" in lowered
        if b"\ntransfer-encoding:" in lowered:
            self.transfer_encoding = b",".join(_values(lowered, b"\ntransfer-encoding:"))
        if b"\nconnection:" in lowered:
            self.has_connection = True
            tokens = b",".join(_values(lowered, b"\nconnection:")).split(b",")
            self.close = any(token.strip(b" \t") == b"close" for token in tokens)

    def content_length(self) -> int:
        values = _values(self.lowered, b"\ncontent-length:")
        if len(values) != 1 or not values[0].isdigit():
            raise H1Error("response head has an invalid content-length")
        return int(values[0])


def _values(lowered: bytes, marker: bytes) -> list[bytes]:
    values = []
    start = lowered.find(marker)
    while start >= 0:
        value_start = start + len(marker)
        value_end = lowered.find(b"\r\n", value_start)
        values.append(lowered[value_start:value_end].strip(b" \t"))
        start = lowered.find(marker, value_end)
    return values
