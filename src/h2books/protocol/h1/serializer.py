"""Building HTTP/1.1 heads: the bytes, and the facts about them the server core acts on.

`serialize_head` reads the framing and connection fields while it encodes them,
so the core frames a response without ever parsing its own output again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.framing import CHUNKED, FIXED, UNTIL_CLOSE, status_forbids_body
from h2books.protocol.h1.parser import (
    HEAD_CHARS,
    HTTP_11,
    TOKEN_CHARS,
    check_trailer_names,
    keep_alive_of,
    parse_content_length,
)
from h2books.protocol.status import REASONS

__all__ = [
    "CONTINUE_RESPONSE",
    "ResponseHead",
    "encode_fields",
    "encode_trailers",
    "error_response",
    "serialize_head",
]

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

_REASONS = {status: reason.encode("latin-1") for status, reason in REASONS.items()}
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in _REASONS.items()
}
# Field names whose values decide framing; other names are not looked at.
_FRAMING_NAMES = (b"content-length", b"transfer-encoding", b"connection")


@dataclass(slots=True)
class ResponseHead:
    """A serialized response head and what it says about framing and persistence.

    ``data`` is the head as sent: the status line, the field lines and the blank line
    (the core inserts its own fields before the blank line, when it adds any: a whole
    answer with its content-length, to a persistent HTTP/1.1 peer, goes out as ``data``
    and the body, one concatenation). ``framing`` is what the fields declare:
    `FIXED` (content-length ``length``), `CHUNKED`, or `UNTIL_CLOSE` for neither,
    which the core turns into a content-length or chunked coding where it can.
    ``close``: a ``connection: close`` option; ``has_connection``: any connection
    field; ``no_body``: the status never carries a body (1xx, 204, 304);
    ``sent_as_is``: a final answer framed by its content-length, with no connection
    field, that may carry a body, so that to a persistent HTTP/1.1 request the core
    sends ``data`` and the body as they are (its fast path). Build it
    with `serialize_head`, which keeps the facts true to the bytes, and treat it
    as immutable: a runtime sends one head many times.
    """

    data: bytes
    status: int
    framing: int = UNTIL_CLOSE
    length: int = -1
    close: bool = False
    has_connection: bool = False
    no_body: bool = field(init=False)
    sent_as_is: bool = field(init=False)

    def __post_init__(self) -> None:
        self.no_body = no_body = status_forbids_body(self.status)
        self.sent_as_is = (
            self.framing == FIXED and not self.has_connection and not no_body and self.status >= 200
        )

    @property
    def informational(self) -> bool:
        """A 1xx interim response."""
        return self.status < 200

    def with_data(self, data: bytes) -> ResponseHead:
        """The same facts over other bytes: for a change to a field the facts do not
        come from (a new Date value), without encoding every field again."""
        return ResponseHead(
            data, self.status, self.framing, self.length, self.close, self.has_connection
        )


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


def encode_trailers(fields: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The end of a chunked body with a trailer section: the last chunk, the field
    lines, the blank line (RFC 9112 section 7.1.2). Validated like head fields; a
    framing or connection field is refused (`H1Error`)."""
    out = [b"0\r\n"]
    encode_fields(fields, out)
    check_trailer_names(name.lower() for name in out[1::4])
    out.append(b"\r\n")
    return b"".join(out)


def serialize_head(
    status: int, fields: Iterable[tuple[bytes, bytes]], reason: bytes | None = None
) -> ResponseHead:
    """``HTTP/1.1 <status> <reason>\\r\\n``, the field lines and the blank line, and
    their facts.

    Raises `H1Error` for an invalid status, name, value or reason, and for framing
    the core cannot send: a content-length that is not one number, a transfer
    coding other than chunked, or both fields.
    """
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
    names = out[1::4]  # (before the blank line joins `out`: its index would be a name's)
    out.append(b"\r\n")
    data = b"".join(out)
    # One search over the joined names screens out heads with none of the fields;
    # a false hit (x-content-length) only costs the exact look below.
    joined = b"\n".join(names).lower()
    if not any(name in joined for name in _FRAMING_NAMES):
        return ResponseHead(data, status)
    found: dict[bytes, list[bytes]] = {}
    for name, value in zip(names, out[3::4], strict=True):
        lowered = name.lower()
        if lowered in _FRAMING_NAMES:
            found.setdefault(lowered, []).append(value.strip(b" \t"))
    connection = found.get(b"connection")
    close = connection is not None and not keep_alive_of(connection, HTTP_11)
    transfer_encoding = found.get(b"transfer-encoding")
    content_length = found.get(b"content-length")
    if transfer_encoding is not None:
        if content_length is not None:
            raise H1Error("both content-length and transfer-encoding")
        codings = b",".join(transfer_encoding).lower().split(b",")
        if [coding.strip(b" \t") for coding in codings] != [b"chunked"]:
            raise H1Error("a response may only use transfer-encoding: chunked")
        return ResponseHead(data, status, CHUNKED, -1, close, connection is not None)
    if content_length is not None:
        # Repeats of one value are tolerated (a handler's Content-Length beside ours).
        if len(set(content_length)) != 1:
            raise H1Error("response head has differing content-length values")
        length = parse_content_length(content_length[:1])
        return ResponseHead(data, status, FIXED, length, close, connection is not None)
    return ResponseHead(data, status, UNTIL_CLOSE, -1, close, connection is not None)


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
