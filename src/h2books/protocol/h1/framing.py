"""How the body of a received HTTP/1.1 message is delimited: RFC 9112 section 6.3, written once.

The server role asks it about request bodies, the client role about response
bodies, and the serializer about the heads the server sends. The rules are
applied in the RFC's order, each under the number it has there.
"""

from __future__ import annotations

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.parser import HTTP_10, parse_content_length

__all__ = [
    "CHUNKED",
    "FIXED",
    "NO_BODY",
    "TUNNEL",
    "UNTIL_CLOSE",
    "body_framing",
    "status_forbids_body",
]

# How a body is delimited.
NO_BODY = 0  # the message ends with its head
FIXED = 1  # content-length octets
CHUNKED = 2  # the chunked transfer coding
UNTIL_CLOSE = 3  # everything up to the end of the connection (responses only)
TUNNEL = 4  # 2xx to CONNECT: the connection carries other bytes from now on

# Statuses whose responses never have a body, whatever their fields say (rule 1).
_BODYLESS_STATUSES = frozenset((*range(100, 200), 204, 304))

_NO_BODY = (NO_BODY, 0)
_CHUNKED = (CHUNKED, 0)
_UNTIL_CLOSE = (UNTIL_CLOSE, 0)
_TUNNEL = (TUNNEL, 0)


def status_forbids_body(status: int) -> bool:
    """1xx, 204 and 304 responses end with their head (RFC 9112 section 6.3 rule 1)."""
    return status in _BODYLESS_STATUSES


def body_framing(
    framing_fields: dict[bytes, list[bytes]],
    http_version: bytes,
    request_method: bytes | None = None,
    status: int = 0,
) -> tuple[int, int]:
    """(how the body is delimited, its length for `FIXED`) of a received message.

    ``framing_fields`` is what `parse_fields` collected; ``request_method`` is
    None for a request, else the method of the request a response answers.
    Raises `H1Error` for framing that cannot be trusted: both fields (a
    smuggling vector), transfer-encoding in HTTP/1.0, an invalid length or
    coding. Limits on the length are the caller's.
    """
    transfer_encoding = framing_fields.get(b"transfer-encoding")
    content_length = framing_fields.get(b"content-length")
    if request_method is not None:
        # 1. HEAD, 1xx, 204, 304: no body, whatever the fields say.
        if request_method == b"HEAD" or status in _BODYLESS_STATUSES:
            return _NO_BODY
        # 2. A 2xx answer to CONNECT turns the connection into a tunnel.
        if request_method == b"CONNECT" and 200 <= status < 300:
            return _TUNNEL
    if transfer_encoding is not None:
        # 3. Both fields: the RFC lets transfer-encoding win, but a message that has
        # both is how requests get smuggled past a proxy; neither role accepts it.
        if content_length is not None:
            raise H1Error("both content-length and transfer-encoding")
        # Section 6.1: HTTP/1.0 has no transfer codings, so the framing is faulty.
        if http_version == HTTP_10:
            raise H1Error("transfer-encoding in an HTTP/1.0 message")
        # 4. chunked last: chunked. Not last: a response runs until close, a request
        # has no length that can be known.
        codings = [c.strip(b" \t").lower() for c in b",".join(transfer_encoding).split(b",")]
        codings = [c for c in codings if c]
        if codings and codings[-1] == b"chunked":
            if len(codings) == 1:
                return _CHUNKED
            if b"chunked" in codings[:-1]:
                raise H1Error("chunked applied more than once")
            raise H1Error("unsupported transfer coding", 501)  # section 6.1
        if request_method is not None and codings:
            return _UNTIL_CLOSE
        raise H1Error("chunked is not the final transfer coding")
    if content_length is not None:
        # 5 and 6. A valid length, or an error.
        length = parse_content_length(content_length)
        return (FIXED, length) if length else _NO_BODY
    # 7. A request with neither has no body; 8. a response with neither runs until close.
    return _NO_BODY if request_method is None else _UNTIL_CLOSE
