"""An ASGI app's response header list, made safe for both protocol cores.

The app's list may hold lists instead of tuples (`[b"content-type", b"text/plain"]` is
valid ASGI), names with capitals, a `transfer-encoding` the spec tells servers to
ignore, and connection-specific fields that HTTP/2 forbids (RFC 9113 §8.2.2: a client
treats such a response as malformed). The HTTP/1.1 core validates what it serializes,
the HTTP/2 core trusts its caller, so the checks are made here, for both.

A field seen once and found good is remembered (bounded), so a framework's usual
fields cost one set lookup each per response. `content-length` is never remembered: its
value is parsed each time, for the body to be checked against it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from h2books.http import Response
from h2books.interfaces.templates import keep_head

# Never sent on: the server frames the body itself (ASGI: "the server must ignore it").
_ALWAYS_DROPPED = frozenset({b"transfer-encoding"})
# Connection-specific: meaningful on HTTP/1.1, malformed on HTTP/2 and HTTP/3.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"upgrade", b"te"})
_TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
# CTLs other than HTAB, and DEL: never in a field value (response splitting).
_BAD_VALUE_OCTETS = bytes([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F])

_GOOD_FIELDS: set[tuple[bytes, bytes]] = set()
_GOOD_FIELDS_MAX = 4096


class FieldError(ValueError):
    """A header the app sent that no protocol can carry."""


def response_fields(
    headers: Iterable[Any], multiplexed: bool
) -> tuple[list[tuple[bytes, bytes]], int | None]:
    """(fields to send, declared content-length or None). `multiplexed`: HTTP/2 or 3.

    Raises `FieldError` for a field that cannot be sent (a bad name or value)."""
    good = _GOOD_FIELDS
    fields: list[tuple[bytes, bytes]] = []
    length: int | None = None
    for field in headers:
        if type(field) is not tuple:
            field = tuple(field)
        if field in good:
            fields.append(field)
            continue
        if field[0] == b"content-length" and len(field) == 2 and type(field[1]) is bytes:
            checked: tuple[bytes, bytes] | None = field
        else:
            checked = _check(field, multiplexed)
        if checked is None:
            continue
        name, value = checked
        if name == b"content-length":
            declared = _content_length(value)
            if length is not None and declared != length:
                raise FieldError("differing content-length values")
            if length is None:
                length = declared
                fields.append(checked)
            continue
        fields.append(checked)
        # Remembered for every protocol, so only what every protocol sends as it is: no
        # hop-by-hop field (HTTP/2 drops them), no value with surrounding whitespace
        # (HTTP/2 strips it, HTTP/1.1 keeps it).
        if name not in _HOP_BY_HOP and value == value.strip(b" \t"):
            if len(good) >= _GOOD_FIELDS_MAX:
                good.clear()
            good.add(checked)
    return fields, length


def _check(field: tuple[Any, ...], multiplexed: bool) -> tuple[bytes, bytes] | None:
    if len(field) != 2:
        raise FieldError(f"a header must be a [name, value] pair, not {field!r}")
    name, value = field
    if type(name) is not bytes or type(value) is not bytes:
        raise FieldError(f"header names and values must be bytes: {field!r}")
    if not name.islower():
        name = name.lower()
    if not name or name.translate(None, _TOKEN):
        raise FieldError(f"invalid header name {name!r}")
    if value.translate(None, _BAD_VALUE_OCTETS) != value:
        raise FieldError(f"control character in the value of {name!r}")
    if name in _ALWAYS_DROPPED:
        return None
    if multiplexed:
        if name in _HOP_BY_HOP:
            return None
        value = value.strip(b" \t")  # RFC 9113 §8.2.1: no leading or trailing whitespace
    return name, value


def _content_length(value: bytes) -> int:
    if not value.isdigit() or len(value) > 18:
        raise FieldError(f"invalid content-length {value!r}")
    return int(value)


def informational_fields(links: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    """103 Early Hints: one `link` field per entry of the message's `links`."""
    fields = []
    for link in links:
        if type(link) is not bytes:
            raise FieldError(f"early hint links must be bytes, not {type(link).__name__}")
        checked = _check((b"link", link), False)
        assert checked is not None
        fields.append(checked)
    return fields


def push_request_fields(headers: Iterable[Any]) -> list[tuple[bytes, bytes]]:
    """The request header fields of an `http.response.push` (HTTP/2 only: hop-by-hop
    fields are dropped, as they would be on the wire)."""
    fields = []
    for field in headers:
        checked = _check(tuple(field), True)
        # (A Host field is the adapter's to drop: a push names its authority in :authority.)
        if checked is not None and checked[0] != b"content-length":
            fields.append(checked)
    return fields


def trailer_fields(headers: Iterable[Any], multiplexed: bool) -> list[tuple[bytes, bytes]]:
    fields = []
    for field in headers:
        checked = _check(tuple(field), multiplexed)
        if checked is not None:
            fields.append(checked)
    return fields


# -- response heads, cached: one per distinct (protocol family, status, header list) ------

# A framework sends the same head again and again (the same fields, often the same length).
# A head seen before skips the checks above, and its Response template carries the
# adapters' cached encodings (per protocol, per Date second), lent to each request's own
# Response. Bounded: cleared when full.


class Head:
    """A checked response head: the fields to send and the declared content-length."""

    __slots__ = ("declared", "fields", "status", "template")

    def __init__(self, status: int, fields: list[tuple[bytes, bytes]], declared: int | None):
        self.status = status
        self.fields = tuple(fields)
        self.declared = declared
        # A Response carrying the adapters' cached encodings of this head, lent to each
        # whole response sent with it (templates.respond_whole).
        self.template: Response | None = None


# An interface's checked heads: (multiplexed, status, *the app's header tuples) -> Head
# (interfaces/templates.py: per interface, bounded).
Heads = dict[tuple[Any, ...], Head]


def response_head(status: int, headers: Any, multiplexed: bool, heads: Heads) -> Head:
    """The checked head for `status` and the app's `headers`; raises `FieldError`."""
    try:
        key: tuple[Any, ...] | None = (multiplexed, status, *headers)
        head = heads.get(key)  # type: ignore[arg-type]
    except TypeError:  # [name, value] lists: not hashable, so not cached
        key = head = None
    if head is None:
        fields, declared = response_fields(headers, multiplexed)
        head = Head(status, fields, declared)
        if key is not None:
            keep_head(heads, key, head, head.fields)
    return head


def with_length(head: Head, length: int, multiplexed: bool, heads: Heads) -> Head:
    """The head plus the content-length of a whole body the app gave none for."""
    return response_head(
        head.status, (*head.fields, (b"content-length", b"%d" % length)), multiplexed, heads
    )
