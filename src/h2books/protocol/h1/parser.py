"""Stateless parsing of HTTP/1.1 message parts (RFC 9112, RFC 9110).

Every function takes complete, already delimited bytes and either returns the
parsed value or raises `H1Error` carrying the status a server should answer
with. Validation works on whole lines or whole heads with C-level bytes
methods (``split``, ``translate``, ``partition``) rather than per-byte loops.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from h2books.protocol.h1.errors import H1Error

__all__ = [
    "HEAD_CHARS",
    "HTTP_10",
    "HTTP_11",
    "TOKEN_CHARS",
    "check_head_bytes",
    "check_trailer_names",
    "keep_alive_of",
    "parse_chunk_size",
    "parse_content_length",
    "parse_fields",
    "parse_request_line",
    "parse_status_line",
    "target_authority",
    "validate_host",
]

HTTP_10 = b"1.0"
HTTP_11 = b"1.1"
# An origin-form target's first octet, b"/"[0]: on CPython 3.11 `target[0] != SLASH` costs
# ~280 instructions less than `target[:1] != b"/"` (the slice is a new object).
SLASH = 0x2F

_ALL_BYTES = bytes(range(256))
_DIGITS = b"0123456789"
_ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# RFC 9110 §5.6.2 tchar.
TOKEN_CHARS = b"!#$%&'*+-.^_`|~" + _DIGITS + _ALPHA
# What may appear in a head besides CR/LF: HTAB, SP, VCHAR, obs-text. Deleting
# these with bytes.translate leaves exactly the CR/LF bytes and forbidden CTLs.
HEAD_CHARS = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
# RFC 3986 characters allowed in an origin-form or absolute-form target
# (unreserved, sub-delims, ":", "@", "/", "?", and "%" of pct-encoding).
_TARGET_CHARS = _ALPHA + _DIGITS + b"-._~!$&'()*+,;=:@/?%"
# A table for bytes.translate that keeps every byte of a plain target (the above, "%"
# left out: a pct-encoding needs its own check) and changes every other byte: a target
# is plain when translating leaves it equal. A table alone takes one pass over the
# target, where translate(None, chars) first builds a 256-entry table on every call.
_PLAIN_TARGET = bytes(
    byte if byte in _TARGET_CHARS and byte != 0x25 else (1 if byte == 0 else 0)
    for byte in range(256)
)

_VERSIONS = {b"HTTP/1.1": HTTP_11, b"HTTP/1.0": HTTP_10}
_VERSION_SHAPE = re.compile(rb"HTTP/[0-9]\.[0-9]")
_BAD_PCT = re.compile(rb"%(?![0-9A-Fa-f]{2})")

_HOST = rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)"
# Host field value: uri-host [":" port]; may be empty (RFC 9110 §7.2).
_HOST_FIELD = re.compile(rb"(?:" + _HOST + rb"(?::[0-9]*)?)?")
# absolute-form without userinfo (RFC 9110 §4.2.4 says treat userinfo as an error).
_PATH_AND_QUERY = rb"(?:[/?][" + re.escape(_TARGET_CHARS) + rb"]*)?"
_ABSOLUTE_FORM = re.compile(
    rb"[A-Za-z][A-Za-z0-9+\-.]*://(" + _HOST + rb"(?::[0-9]*)?)" + _PATH_AND_QUERY
)
_AUTHORITY_FORM = re.compile(_HOST + rb":[0-9]+")

_CHUNK_EXT = re.compile(
    rb"(?:[ \t]*;[ \t]*[" + re.escape(TOKEN_CHARS) + rb"]+"
    rb"(?:[ \t]*=[ \t]*(?:[" + re.escape(TOKEN_CHARS) + rb"]+"
    rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?)*'
)
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_MAX_CHUNK_SIZE_DIGITS = 16  # 64 bits; anything longer is an attack, not a body
_MAX_CONTENT_LENGTH_DIGITS = 18  # < 2**63

# Fields the connection cores act on; collected while parsing so that they need
# no second pass over the header list.
_FRAMING_FIELDS = frozenset(
    (b"content-length", b"transfer-encoding", b"host", b"connection", b"expect", b"upgrade")
)

# b"%", searched for as an int: a one-octet bytes needle first fails as an int (a TypeError
# raised and cleared), an int is one memchr.
_PERCENT = 0x25

# Raw field name -> validated lowercase name. Pre-filled with common names in
# the spellings clients use; grows with names seen (bounded) so a keep-alive
# connection's repeated custom fields skip validation and lower().
_NAME_CACHE: dict[bytes, bytes] = {}
_NAME_CACHE_LIMIT = 1024
_COMMON_NAMES = (
    "Host Accept Accept-Encoding Accept-Language Accept-Charset Authorization Cache-Control "
    "Connection Content-Length Content-Type Cookie Date Expect Forwarded From If-Match "
    "If-Modified-Since If-None-Match If-Range If-Unmodified-Since Keep-Alive Max-Forwards "
    "Origin Pragma Priority Proxy-Authorization Range Referer TE Trailer Transfer-Encoding "
    "Upgrade User-Agent Via Warning X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host "
    "X-Requested-With X-Request-Id DNT Sec-Fetch-Site Sec-Fetch-Mode Sec-Fetch-Dest "
    "Sec-Fetch-User Upgrade-Insecure-Requests Location Server Set-Cookie Vary ETag "
    "Last-Modified Expires Age Allow Content-Encoding Content-Language Content-Range "
    "Accept-Ranges Retry-After WWW-Authenticate Alt-Svc Strict-Transport-Security"
)
for _name in _COMMON_NAMES.split():
    _raw = _name.encode("ascii")
    for _spelling in (_raw, _raw.lower(), _raw.upper()):
        _NAME_CACHE[_spelling] = _raw.lower()
_NAME_CACHE[b"Content-type"] = b"content-type"
_NAME_CACHE[b"Content-length"] = b"content-length"

# A lone Connection value as clients usually spell it -> persistence, for any version.
_COMMON_CONNECTION = {b"keep-alive": True, b"Keep-Alive": True, b"close": False, b"Close": False}

_KNOWN_METHODS = frozenset(
    (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE")
)


def check_head_bytes(block: bytes, lines: list[bytes]) -> None:
    """Reject CTLs and any CR or LF that is not part of a CRLF line ending.

    ``lines`` is ``block.split(b"\\r\\n")``: each of its separators puts one CR
    and one LF into what translate leaves, so anything more is a bare CR, a
    bare LF, or a forbidden control character.
    """
    leftover = block.translate(None, HEAD_CHARS)
    if len(leftover) != 2 * (len(lines) - 1):
        if leftover.count(b"\n") > leftover.count(b"\r"):
            raise H1Error("bare LF line ending (CRLF required)")
        if leftover.count(b"\r") > len(lines) - 1:
            raise H1Error("bare CR in message head")
        raise H1Error("control character in message head")


def parse_request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """``method SP request-target SP HTTP-version`` -> (method, target, b"1.1"|b"1.0").

    Parsed per request, so written for the common one (GET, HTTP/1.1, a plain
    origin-form target) on CPython 3.11: the parts split from the line are new bytes,
    which a set or dict lookup hashes first (a compare costs ~450 instructions less),
    and `startswith` parses its arguments (a one-octet slice compared costs ~350 less).
    """
    try:
        method, target, version = line.split(b" ")
    except ValueError:
        raise H1Error("malformed request line") from None
    # The common entry of _VERSIONS (and of _KNOWN_METHODS below) is compared first.
    http_version = HTTP_11 if version == b"HTTP/1.1" else _VERSIONS.get(version)
    if http_version is None:
        if _VERSION_SHAPE.fullmatch(version):
            raise H1Error("unsupported HTTP version", 505)
        raise H1Error("malformed HTTP version")
    check_method_and_target(method, target)
    return method, target, http_version


def check_method_and_target(method: bytes, target: bytes) -> None:
    """The rules of a request line's method and target (parse_request_line's, and the
    server core's for a line it split itself: its repeated-fields path)."""
    if (
        method != b"GET"
        and method not in _KNOWN_METHODS
        and (not method or method.translate(None, TOKEN_CHARS))
    ):
        raise H1Error("invalid method")
    # The common case, a plain origin-form target, takes one C-level pass.
    if (
        not target
        or target[0] != SLASH
        or target.translate(_PLAIN_TARGET) != target
        or method == b"CONNECT"
    ):
        _check_target(method, target)


def _check_target(method: bytes, target: bytes) -> None:
    # RFC 9112 §3.2: origin-form, absolute-form, authority-form (CONNECT only)
    # and asterisk-form (OPTIONS only).
    if method == b"CONNECT":
        if not _AUTHORITY_FORM.fullmatch(target):
            raise H1Error("CONNECT needs an authority-form target")
        return
    if target.startswith(b"/"):
        if target.translate(None, _TARGET_CHARS):
            raise H1Error("invalid character in request target")
    elif target == b"*":
        if method != b"OPTIONS":
            raise H1Error("asterisk-form target is only for OPTIONS")
        return
    elif not _ABSOLUTE_FORM.fullmatch(target):
        raise H1Error("invalid request target")
    if _PERCENT in target and _BAD_PCT.search(target):
        raise H1Error("invalid percent-encoding in request target")


def target_authority(method: bytes, target: bytes) -> bytes | None:
    """The authority of an absolute-form or authority-form target, else None."""
    if target[:1] == b"/" and method != b"CONNECT":
        return None
    if method == b"CONNECT":
        return target
    match = _ABSOLUTE_FORM.fullmatch(target)
    return match.group(1) if match else None


def parse_status_line(line: bytes) -> tuple[bytes, int, bytes]:
    """``HTTP-version SP status-code SP [reason]`` -> (version, status, reason).

    A missing SP after the code is tolerated (RFC 9112 §4 notes servers that
    omit it).
    """
    parts = line.split(b" ", 2)
    http_version = _VERSIONS.get(parts[0])
    if http_version is None:
        raise H1Error("unsupported or malformed HTTP version in status line")
    if len(parts) < 2 or len(parts[1]) != 3 or not parts[1].isdigit():
        raise H1Error("malformed status code")
    status = int(parts[1])
    if status < 100:
        raise H1Error("status code out of range")
    return http_version, status, parts[2] if len(parts) == 3 else b""


def parse_fields(
    lines: list[bytes], start: int = 1
) -> tuple[list[tuple[bytes, bytes]], dict[bytes, list[bytes]]]:
    """Field lines -> (headers, framing fields).

    ``headers`` has lowercase names and OWS-stripped values in order;
    ``framing`` maps the few names the cores act on to their values. The
    caller has already run `check_head_bytes`, so no line holds a CTL, CR or
    LF and a bare ``strip()`` removes exactly the OWS (SP/HTAB).
    """
    headers: list[tuple[bytes, bytes]] = []
    framing: dict[bytes, list[bytes]] = {}
    append = headers.append
    cache_get = _NAME_CACHE.get
    framing_names = _FRAMING_FIELDS
    for line in lines[start:] if start else lines:
        name, colon, value = line.partition(b":")
        lname = cache_get(name)
        if lname is None or not colon:
            lname = _validate_name(name, colon, line)
        value = value.strip()
        append((lname, value))
        if lname in framing_names:
            seen = framing.get(lname)
            if seen is None:
                framing[lname] = [value]
            else:
                seen.append(value)
    return headers, framing


def _validate_name(name: bytes, colon: bytes, line: bytes) -> bytes:
    if not colon:
        raise H1Error("field line without a colon")
    if line[:1] in (b" ", b"\t"):
        raise H1Error("obsolete line folding is not allowed")
    if not name:
        raise H1Error("empty field name")
    if name.translate(None, TOKEN_CHARS):
        if name.rstrip(b" \t").translate(None, TOKEN_CHARS) == b"":
            raise H1Error("whitespace between field name and colon")
        raise H1Error("invalid character in field name")
    lname = name.lower()
    if len(_NAME_CACHE) < _NAME_CACHE_LIMIT:
        _NAME_CACHE[name] = lname
    return lname


# The fields the cores act on frame, route or condition a message: they must be known
# before the content, so a trailer section cannot carry them (RFC 9110 section 6.5.1).
_TRAILER_FORBIDDEN = _FRAMING_FIELDS


def check_trailer_names(lowercase_names: Iterable[bytes]) -> None:
    """Refuse (400) a trailer section that names a framing, routing or connection field;
    the same rule for trailers received and trailers sent."""
    for name in lowercase_names:
        if name in _TRAILER_FORBIDDEN:
            raise H1Error(f"{name.decode('latin-1')} is not allowed in trailers")


def parse_content_length(values: list[bytes]) -> int:
    """A single ``1*DIGIT`` value; lists, duplicates and signs are rejected."""
    if len(values) != 1:
        raise H1Error("duplicate content-length")
    value = values[0]
    if not value.isdigit():  # bytes.isdigit is ASCII-only; false for b""
        raise H1Error("invalid content-length")
    if len(value) > _MAX_CONTENT_LENGTH_DIGITS:
        raise H1Error("content-length too long")
    return int(value)


def keep_alive_of(connection: list[bytes] | None, http_version: bytes) -> bool:
    """Persistence per RFC 9112 §9.3: 1.1 unless ``close``, 1.0 only with ``keep-alive``."""
    if connection is None:
        return http_version == HTTP_11
    if len(connection) == 1:
        common = _COMMON_CONNECTION.get(connection[0])
        if common is not None:
            return common
    tokens = {token.strip(b" \t").lower() for token in b",".join(connection).split(b",")}
    if b"close" in tokens:
        return False
    return http_version == HTTP_11 or b"keep-alive" in tokens


def validate_host(value: bytes) -> None:
    if not _HOST_FIELD.fullmatch(value):
        raise H1Error("invalid host")


def parse_chunk_size(line: bytes) -> int:
    """``chunk-size [chunk-ext]`` (without CRLF) -> size; extensions are checked, then ignored."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")  # BWS before the first ";"
        if not _CHUNK_EXT.fullmatch(b";" + extensions):
            raise H1Error("invalid chunk extension")
    if not size or size.translate(None, _HEX_DIGITS):
        raise H1Error("invalid chunk size")
    if len(size) > _MAX_CHUNK_SIZE_DIGITS:
        raise H1Error("chunk size too long")
    return int(size, 16)
