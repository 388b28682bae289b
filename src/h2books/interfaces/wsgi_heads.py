"""The head of a WSGI answer: the app's status and (str, str) fields checked and encoded
once, and kept (`WsgiHead`): an app sends the same few heads again and again.

A head seen before costs one dict lookup (`head_of`), and a whole answer with a declared
length goes out through the head's template Response (`templates.respond_whole`), whose
encodings the adapters keep on it (its HTTP/2 fields and HPACK block, its HTTP/1.1 head).
"""

from __future__ import annotations

from typing import Any

from h2books.http import Response
from h2books.interfaces.templates import LARGEST_CACHED_HEAD, keep_head

# PEP 3333: hop-by-hop fields are the server's business; an app sending one is an error.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Field values: visible ASCII, space, tab and obs-text; never CR, LF, NUL or another CTL.
_VALUE_CHARS = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
# Caches of what repeats from response to response, bounded against an app that varies it.
_STATUS_CACHE_LIMIT = 1024
_statuses: dict[str, int] = {}
_fields: dict[object, tuple[bytes, bytes]] = {}
# Field pairs are cached as they come: the first thousands include the common ones.
_FIELD_CACHE_LIMIT = 4096


def _parse_status(status: str) -> int:
    code = _statuses.get(status)
    if code is None:
        if type(status) is not str:
            raise TypeError(f"the WSGI status must be a str, not {type(status).__name__}")
        digits = status[:3]
        if not (digits.isascii() and digits.isdigit() and status[3:4] in ("", " ")):
            raise ValueError(f"invalid WSGI status {status!r}: it must be like '200 OK'")
        code = int(digits)
        if code < 200:
            raise ValueError(f"invalid WSGI status {status!r}: not a final status")
        if len(_statuses) < _STATUS_CACHE_LIMIT:
            _statuses[status] = code
    return code


def _encode_headers(
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
) -> list[tuple[bytes, bytes]]:
    """The app's (str, str) fields as lowercase bytes, validated. Most fields repeat from
    response to response (content-type, cache-control), so each pair is checked and
    encoded once and looked up after that."""
    if not isinstance(headers, list | tuple):
        raise TypeError(f"WSGI response headers must be a list, not {type(headers).__name__}")
    fields: list[tuple[bytes, bytes]] = []
    append = fields.append
    known = _fields
    for field in headers:
        try:
            encoded = known.get(field)
        except TypeError:  # a list, not a tuple: unhashable, and checked below
            encoded = None
        append(encoded or _encode_field(field))
    return fields


def _encode_field(field: object) -> tuple[bytes, bytes]:
    """One (name, value) pair, checked: a CR or LF in a value would let the app (or whoever
    fills the value) write a field of its own."""
    if not isinstance(field, tuple | list) or len(field) != 2:
        raise TypeError(f"a WSGI response header must be a (name, value) tuple: {field!r}")
    name, value = field
    if type(name) is not str:
        raise TypeError(f"header name {name!r} is not a str")
    if type(value) is not str:
        raise TypeError(f"the value of header {name!r} is not a str: {value!r}")
    encoded_name = name.lower().encode("latin-1")
    if not encoded_name or encoded_name.translate(None, _TOKEN_CHARS):
        raise ValueError(f"invalid header name {name!r}")
    if name.lower() in _HOP_BY_HOP:
        raise ValueError(f"hop-by-hop header {name!r}: the server handles those")
    encoded_value = value.encode("latin-1")
    if encoded_value.translate(None, _VALUE_CHARS):
        raise ValueError(
            f"the value of header {name!r} holds CR, LF, NUL or another control character"
        )
    encoded = (encoded_name, encoded_value)
    if (
        type(field) is tuple
        and len(_fields) < _FIELD_CACHE_LIMIT
        and len(encoded_name) + len(encoded_value) <= LARGEST_CACHED_HEAD
    ):
        _fields[field] = encoded
    return encoded


def _declared_length(fields: list[tuple[bytes, bytes]]) -> int:
    for name, value in fields:
        if name == b"content-length":
            if not value.isdigit():
                raise ValueError(f"invalid content-length {value!r}")
            return int(value)
    return -1


class WsgiHead:
    """A checked response head: the status, the encoded fields, the declared length (-1:
    none). `template` (touched only on the loop) is the Response that carries the
    adapters' cached encodings of this head (its HTTP/2 fields and HPACK block, its
    HTTP/1.1 head) from one whole answer to the next, each lending it its body."""

    __slots__ = ("declared", "fields", "status", "template")

    def __init__(self, status: int, fields: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        self.fields = fields
        self.declared = _declared_length(fields)
        self.template: Response | None = None


# An interface's checked heads: (status, *the app's header tuples) -> WsgiHead
# (interfaces/templates.py: per interface, bounded).
WsgiHeads = dict[tuple[Any, ...], WsgiHead]


def head_of(
    status: str, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...], heads: WsgiHeads
) -> WsgiHead:
    """The checked head of `start_response(status, headers)`; raises TypeError or
    ValueError (the app's error: a 500) for a head PEP 3333 or HTTP refuses. An app sends
    the same few heads again and again, so a head seen before costs one lookup."""
    key: tuple[Any, ...] | None = None
    head = None
    if type(headers) is list or type(headers) is tuple:  # never iterate anything else here
        try:
            key = (status, *headers)
            head = heads.get(key)
        except TypeError:  # [name, value] lists: not hashable, checked below
            key = None
    if head is None:
        head = WsgiHead(_parse_status(status), _encode_headers(headers))
        if key is not None:
            keep_head(heads, key, head, head.fields)
    return head
