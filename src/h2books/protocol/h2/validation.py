"""HTTP/2 field rules (RFC 9113 §8.2-8.3): turn a decoded field list into a request,
a response or trailers, or reject it as malformed (the caller sends RST_STREAM
PROTOCOL_ERROR; over HTTP/3, whose request rules are the same (RFC 9114 §4.2-4.3), the
adapter resets the stream H3_MESSAGE_ERROR).

This runs once per request, so it is written for speed: one pass over the fields,
and names/values already seen valid skip the character checks (bounded caches).
"""

from __future__ import annotations

from itertools import permutations
from typing import Final

from h2books.protocol.hpack.decoder import UNCACHED_VALUE_NAMES
from h2books.protocol.hpack.static_table import STATIC_TABLE

from .errors import H2Error

__all__ = [
    "MalformedHeaders",
    "check_name",
    "check_value",
    "parse_content_length",
    "validate_request",
    "validate_response",
    "validate_trailers",
]

Fields = list[tuple[bytes, bytes]]


class MalformedHeaders(H2Error):
    """A field block breaks §8.2-8.3; a stream error of type PROTOCOL_ERROR
    (H3_MESSAGE_ERROR over HTTP/3)."""


# tchar (RFC 9110 §5.6.2) without uppercase: field names must be lowercase in HTTP/2.
_NAME_CHARS: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN_CHARS: Final = _NAME_CHARS + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CONNECTION_SPECIFIC: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
# Names with a rule of their own; everything else only needs valid characters.
_SPECIAL_NAMES: Final = _CONNECTION_SPECIFIC | {b"te", b"cookie", b"content-length", b"host"}

_CACHE_LIMIT: Final = 4096
# The HPACK decoder hands out the static table's own name objects (an indexed field's, or
# a literal's with a static name): sets and keys that hold those same objects find them
# by identity, where an equal copy costs a bytes comparison per lookup.
# (Values too: GET and POST, as an indexed :method hands them out.)
_DECODED_OBJECTS: Final = {string: string for field in STATIC_TABLE for string in field}


def _as_decoded(strings: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return tuple(_DECODED_OBJECTS.get(string, string) for string in strings)


# Plain names (valid characters, no rule of their own) and values already checked.
_good_names: set[bytes] = set(
    _as_decoded(
        (
            b"accept",
            b"accept-encoding",
            b"accept-language",
            b"cache-control",
            b"content-type",
            b"user-agent",
            b"referer",
            b"origin",
            b"authorization",
            b"if-none-match",
            b"if-modified-since",
            b"priority",
            b"x-forwarded-for",
            b"date",
            b"server",
            b"etag",
            b"last-modified",
            b"location",
            b"vary",
        )
    )
)
_good_values: set[bytes] = set()
_REQUEST_PSEUDO: Final = {
    b":method": 0,
    b":scheme": 1,
    b":authority": 2,
    b":path": 3,
    b":protocol": 4,  # RFC 8441 extended CONNECT
}
# A plain request's four pseudo-header fields, in every order clients send them: for each
# order of names, where :method, :scheme, :authority and :path are in the list. One
# lookup places all four (no duplicate is possible in these orders).
_PLAIN_PSEUDO: Final = _as_decoded((b":method", b":scheme", b":authority", b":path"))
_PSEUDO_ORDERS: Final = {
    names: tuple(names.index(name) for name in _PLAIN_PSEUDO)
    for names in permutations(_PLAIN_PSEUDO)
}
_KNOWN_METHODS: Final = frozenset(
    _as_decoded((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE"))
)


def check_name(name: bytes) -> None:
    """A regular field name: non-empty, lowercase token characters only (§8.2.1)."""
    if not name or name.translate(None, _NAME_CHARS):
        raise MalformedHeaders(f"invalid field name {name!r}")


# Octets searched for as ints: `0x0A in value` is a memchr, while `b"\n" in value` first
# tries the bytes as an int and raises and clears a TypeError (~2,400 instructions each).
_NUL, _LF, _CR = 0x00, 0x0A, 0x0D


def check_value(value: bytes, name: bytes = b"") -> None:
    """No NUL, CR or LF anywhere, no leading or trailing SP/HTAB (§8.2.1). A valid value
    is remembered as such (the validators skip the check for values remembered), unless
    it is a secret or one of a kind (`UNCACHED_VALUE_NAMES`, the decoder's rule too): a
    process-wide set must not hold credentials, nor churn on an etag per response."""
    if value:
        if value[0] in (0x20, 0x09) or value[-1] in (0x20, 0x09):
            raise MalformedHeaders("field value with leading or trailing whitespace")
        if _NUL in value or _CR in value or _LF in value:
            raise MalformedHeaders("field value with NUL, CR or LF")
    if name in UNCACHED_VALUE_NAMES:
        return
    if len(_good_values) >= _CACHE_LIMIT:
        _good_values.clear()
    _good_values.add(value)


def _plain_name(name: bytes) -> None:
    check_name(name)
    if len(_good_names) >= _CACHE_LIMIT:
        _good_names.clear()
    _good_names.add(name)


def parse_content_length(value: bytes) -> int:
    """Digits only (a comma list of one repeated value is tolerated, RFC 9110 §8.6)."""
    if len(value) <= 18 and value.isdigit():  # the common case first
        return int(value)
    if b"," in value:
        parts = {part.strip(b" \t") for part in value.split(b",")}
        if len(parts) != 1:
            raise MalformedHeaders("conflicting content-length values")
        value = parts.pop()
    if not value or len(value) > 18 or not value.isdigit():
        raise MalformedHeaders("invalid content-length")
    return int(value)


def _special(name: bytes, value: bytes, content_length: int | None) -> int | None:
    """Rules for connection-specific fields, te and content-length; returns the
    content length seen so far."""
    if name in _CONNECTION_SPECIFIC:
        raise MalformedHeaders(f"connection-specific field {name!r}")
    if name == b"te":
        if value.lower() != b"trailers":
            raise MalformedHeaders("te other than trailers")
    elif name == b"content-length":
        length = parse_content_length(value)
        if content_length is not None and length != content_length:
            raise MalformedHeaders("conflicting content-length values")
        return length
    return content_length


def validate_request(
    fields: Fields,
) -> tuple[bytes, bytes, bytes, bytes, Fields, int | None, bytes | None]:
    """``(method, scheme, authority, path, regular_fields, content_length, protocol)``.

    Cookie crumbs are joined with ``"; "`` into one field (§8.2.3), at the place of
    the first one. `authority` falls back to the Host field when :authority is absent;
    a Host field, when one came, is the first of `regular_fields` (`host_first`).
    `protocol` is the :protocol of an RFC 8441 extended CONNECT, else None; whether the
    connection allows one (we sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1) is the caller's
    to check.
    """
    good_values = _good_values
    # Pseudo-header fields come first (§8.3). Most requests have exactly the four plain
    # ones, placed by one lookup of their order; the rest go through the general loop.
    # A fifth pseudo-header field other than :protocol needs no look here: the loop over
    # the regular fields rejects it as misplaced.
    count = len(fields)
    try:  # a subscript, not `.get` (a method call): a miss is rare (CONNECT, malformed)
        order = _PSEUDO_ORDERS[fields[0][0], fields[1][0], fields[2][0], fields[3][0]]
    except (KeyError, IndexError):  # not the four plain ones, or fewer than four fields
        order = None
    method: bytes
    scheme: bytes | None
    authority: bytes | None
    path: bytes | None
    protocol: bytes | None
    if order is not None and (count == 4 or fields[4][0] != b":protocol"):
        at_method, at_scheme, at_authority, at_path = order
        method = fields[at_method][1]
        scheme = fields[at_scheme][1]
        authority = fields[at_authority][1]
        path = fields[at_path][1]
        protocol = None
        # Four `in` tests, the path's first: ~500 instructions fewer than `issuperset` of a
        # tuple built for it (a method call and a tuple per request).
        if not (
            path in good_values
            and authority in good_values
            and method in good_values
            and scheme in good_values
        ):
            # Mostly the path alone is new (a crawl's, a push's): the rest are checked once.
            for value in (method, scheme, authority, path):
                if value not in good_values:
                    check_value(value)
        count = 4
    else:
        method, scheme, authority, path, protocol, count = _pseudo_fields(fields)

    # The regular fields are the rest of the list, sliced once: the loop only checks
    # them, and the list is rebuilt only to join cookie crumbs.
    headers = fields[count:]
    content_length: int | None = None
    host: bytes | None = None
    cookies = 0
    good_names = _good_names
    for name, value in headers:
        if value not in good_values:
            check_value(value, name)
        if name in good_names:
            continue
        if name[:1] == b":":
            raise MalformedHeaders(f"misplaced, duplicated or unknown pseudo-header {name!r}")
        if name in _SPECIAL_NAMES:
            if name == b"cookie":
                cookies += 1
            elif name == b"host":
                if host is not None:
                    # A singleton field (RFC 9110 §7.2), as HTTP/1.1 rejects it (RFC 9112
                    # §3.2): only one Host can be checked against :authority.
                    raise MalformedHeaders("more than one host field")
                host = value
            else:
                content_length = _special(name, value, content_length)
        else:
            _plain_name(name)

    if not (protocol is None and method in _KNOWN_METHODS and scheme and path and path[0] == 0x2F):
        # Anything but the common request (a known method other than CONNECT, a
        # :scheme, and a :path that starts with "/"): every rule, in `_request_target`.
        scheme, path = _request_target(method, scheme, authority, path, protocol)
    if cookies > 1:
        headers = _join_cookies(headers)
    if host is not None:
        if authority is None:
            authority = host
        elif host.lower() != authority.lower():
            raise MalformedHeaders("host differs from :authority")
        host_first(headers)
    return method, scheme, authority or b"", path, headers, content_length, protocol


def host_first(headers: Fields) -> None:
    """Moves the (first) Host field to the front of the regular fields: then whoever needs
    a request's host field (ASGI's scope, which wants :authority as a leading Host field
    when none came) tests one field instead of scanning the list. Every multiplexed
    request's fields are handed on so (the HTTP/3 adapter validates its requests with
    `validate_request` too). Rare: browsers and h2 clients send :authority alone. The
    order of fields with different names carries no meaning (RFC 9110 §5.3), and a Host
    field keeps its place among any others. Only `validate_request` calls it: it moves a
    field of the list it builds, never of the caller's."""
    for index, field in enumerate(headers):
        if field[0] == b"host":
            if index:
                headers.insert(0, headers.pop(index))
            return


def _request_target(
    method: bytes,
    scheme: bytes | None,
    authority: bytes | None,
    path: bytes | None,
    protocol: bytes | None,
) -> tuple[bytes, bytes]:
    """The :method and target rules of a request (§8.3.1, RFC 8441 §4); returns
    (scheme, path), both empty for a plain CONNECT."""
    if method not in _KNOWN_METHODS and (not method or method.translate(None, _TOKEN_CHARS)):
        raise MalformedHeaders("invalid :method")
    if protocol is not None:
        return _extended_connect_target(method, scheme, authority, path, protocol)
    if method == b"CONNECT":
        if scheme is not None or path is not None:
            raise MalformedHeaders("CONNECT with :scheme or :path")
        if not authority:
            raise MalformedHeaders("CONNECT without :authority")
        return b"", b""
    if scheme is None or not scheme:
        raise MalformedHeaders("missing :scheme")
    if path is None or not path:
        raise MalformedHeaders("missing or empty :path")
    if (
        path[0] != 0x2F
        and not (path == b"*" and method == b"OPTIONS")
        and scheme in (b"https", b"http")
    ):
        raise MalformedHeaders(":path must start with '/'")
    return scheme, path


def _join_cookies(headers: Fields) -> Fields:
    """The cookie crumbs joined with "; " into one field at the place of the first
    (§8.2.3), the others dropped."""
    crumbs = [value for name, value in headers if name == b"cookie"]
    joined: Fields = []
    for field in headers:
        if field[0] != b"cookie":
            joined.append(field)
        elif crumbs:
            joined.append((b"cookie", b"; ".join(crumbs)))
            crumbs = []
    return joined


def _pseudo_fields(
    fields: Fields,
) -> tuple[bytes, bytes | None, bytes | None, bytes | None, bytes | None, int]:
    """(method, scheme, authority, path, protocol, how many fields they were) of the
    pseudo-header fields that open `fields`, any but :method missing (None)."""
    pseudo: list[bytes | None] = [None, None, None, None, None]
    count = 0
    for name, value in fields:
        slot = _REQUEST_PSEUDO.get(name)
        if slot is None:
            break
        if pseudo[slot] is not None:
            raise MalformedHeaders(f"duplicated {name!r}")
        if value not in _good_values:
            check_value(value)
        pseudo[slot] = value
        count += 1
    method, scheme, authority, path, protocol = pseudo
    if method is None:
        raise MalformedHeaders("missing :method")
    return method, scheme, authority, path, protocol, count


def _extended_connect_target(
    method: bytes,
    scheme: bytes | None,
    authority: bytes | None,
    path: bytes | None,
    protocol: bytes,
) -> tuple[bytes, bytes]:
    """RFC 8441 §4: :protocol only on a CONNECT, and such a CONNECT carries :scheme and
    :path (checked like any request's) besides :authority; returns (scheme, path)."""
    if method != b"CONNECT":
        raise MalformedHeaders(":protocol on a request other than CONNECT")
    if not protocol or protocol.translate(None, _TOKEN_CHARS):
        raise MalformedHeaders("invalid :protocol")
    if not scheme or not path or not authority:
        raise MalformedHeaders("extended CONNECT without :scheme, :path or :authority")
    if path[0] != 0x2F and scheme in (b"https", b"http"):
        raise MalformedHeaders(":path must start with '/'")
    return scheme, path


def validate_response(fields: Fields) -> tuple[int, Fields, int | None]:
    """``(status, regular_fields, content_length)`` of a response head."""
    if not fields or fields[0][0] != b":status":
        return _validate_response_in_any_order(fields)
    # The common shape: :status first, then regular fields only. The regular fields are
    # then all but the first, sliced once; the loop only checks them (the general loop
    # below says what any other shape breaks, in its own words).
    headers = fields[1:]
    content_length: int | None = None
    good_values = _good_values
    good_names = _good_names
    for name, value in headers:
        if value not in good_values:
            check_value(value, name)
        if name in good_names:  # most fields: no pseudo-header, no rule of their own
            continue
        if name == b"content-length" and content_length is None:  # every response, inline
            content_length = parse_content_length(value)
        elif name[:1] == b":":
            return _validate_response_in_any_order(fields)
        elif name in _SPECIAL_NAMES:
            content_length = _special(name, value, content_length)
        else:
            _plain_name(name)
    status = _STATUS_CODES.get(fields[0][1])
    if status is None:
        raise MalformedHeaders("missing or invalid :status")
    return status, headers, content_length


# Every valid :status value (three digits, RFC 9113 §8.3.2), one lookup instead of three checks.
_STATUS_CODES: Final = {b"%03d" % code: code for code in range(1000)}


def _validate_response_in_any_order(fields: Fields) -> tuple[int, Fields, int | None]:
    """`validate_response` for any field order: each field where it is, checked."""
    status: bytes | None = None
    headers: Fields = []
    content_length: int | None = None
    good_values = _good_values
    good_names = _good_names
    for field in fields:
        name, value = field
        if value not in good_values:
            check_value(value, name)
        if name in good_names:
            headers.append(field)
            continue
        if name[:1] == b":":
            if headers:
                raise MalformedHeaders("pseudo-header field after a regular field")
            if name != b":status":
                raise MalformedHeaders(f"invalid response pseudo-header {name!r}")
            if status is not None:
                raise MalformedHeaders("duplicated :status")
            status = value
            continue
        if name == b"content-length" and content_length is None:
            content_length = parse_content_length(value)
        elif name in _SPECIAL_NAMES:
            content_length = _special(name, value, content_length)
        else:
            _plain_name(name)
        headers.append(field)
    if status is None or len(status) != 3 or not status.isdigit():
        raise MalformedHeaders("missing or invalid :status")
    return int(status), headers, content_length


def validate_trailers(fields: Fields) -> Fields:
    """Trailer fields: no pseudo-headers, same name/value rules as any field."""
    for name, value in fields:
        if value not in _good_values:
            check_value(value, name)
        if name[:1] == b":":
            raise MalformedHeaders("pseudo-header field in trailers")
        if name in _SPECIAL_NAMES:
            _special(name, value, None)
        elif name not in _good_names:
            check_name(name)
    return fields
