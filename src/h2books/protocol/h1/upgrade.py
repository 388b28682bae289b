"""HTTP/1.1 Upgrade (RFC 9110 §7.8) to WebSocket (RFC 6455 §4.2.1), server side.

How the server core treats an Upgrade request:

1. **Recognised**: a bodiless HTTP/1.1 ``GET`` whose Connection field lists the
   ``upgrade`` option and whose Upgrade field lists a protocol we can switch to
   (`SWITCHABLE`: ``websocket``), tokens compared case-insensitively. Anything else
   (another protocol, h2c, an Upgrade not named in Connection, a body) is served as a
   plain request: §7.8 lets a server ignore Upgrade.
2. **Delivered**: as `UpgradeRequested` (the `RequestReceived` and the protocol), and
   the core stops parsing: whatever follows the head may already be bytes of the new
   protocol. `paused` is true meanwhile, so the runtime stops reading the socket.
3. **Accepted**: the runtime answers with ``101 Switching Protocols`` (`send_response`
   or `start_response` with a 101 head). The head is queued, `must_close` is set (no
   further HTTP/1.1 response will go out) and the core is done: `take_trailing_data`
   gives the bytes buffered past the request head (h11 calls them ``trailing_data``),
   and every later byte of the socket belongs to the new protocol, unparsed.
4. **Refused**: any other final response. The request had no body, so the stream is
   still in step; the connection goes on as plain HTTP/1.1 (§7.8: the server may
   ignore the Upgrade field and answer the request as it is), and parsing resumes
   after the response, unless that response or the request closes the connection.
"""

from __future__ import annotations

from h2books.protocol.h1.parser import HTTP_11

__all__ = ["SWITCHABLE", "requested_upgrade"]

# The protocols a 101 may switch to; lowercase.
SWITCHABLE = frozenset((b"websocket",))


def _tokens(values: list[bytes]) -> set[bytes]:
    return {token.strip(b" \t").lower() for token in b",".join(values).split(b",")}


def requested_upgrade(
    method: bytes, version: bytes, framing: dict[bytes, list[bytes]]
) -> bytes | None:
    """The protocol a bodiless request asks to switch to (lowercase), or None.

    ``framing`` is what `parse_fields` collected (Connection and Upgrade among them).
    """
    upgrade = framing.get(b"upgrade")
    connection = framing.get(b"connection")
    if upgrade is None or connection is None or method != b"GET" or version != HTTP_11:
        return None
    if b"upgrade" not in _tokens(connection):
        return None
    for protocol in _tokens(upgrade):
        if protocol in SWITCHABLE:
            return protocol
    return None
