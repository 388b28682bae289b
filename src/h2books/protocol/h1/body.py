"""The body of the request being received, in parts (server role).

A request's head is delivered as soon as it is complete; its body follows as it
arrives, part by part, then its end with the trailer fields. When the whole body is
already buffered with the head (the common case of a small request), the request is
delivered whole instead: one event, as cheap as a request without a body.

Once the answer to a request is complete, the rest of its body is not wanted but must
still be read, or the next request on the connection cannot be found. Up to
`DISCARD_LIMIT` octets are read and dropped; a longer rest (a known Content-Length,
or a chunked body that goes on) ends the connection instead: a peer that uploads
megabytes nobody reads costs one connection, not the bandwidth.
"""

from __future__ import annotations

from typing import Protocol

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import BodyEnded, BodyReceived, Event, Fields, RequestReceived
from h2books.protocol.h1.reader import MessageReader

__all__ = ["DISCARD_LIMIT", "IncomingBody", "PendingHead", "expects_continue"]

# A parsed request head not delivered yet: method, target, version, headers, keep-alive,
# host.
PendingHead = tuple[bytes, bytes, bytes, list[tuple[bytes, bytes]], bool, bytes | None]


class Deliver(Protocol):
    """The server core's delivery of a request (it counts the answer owed)."""

    def __call__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        keep_alive: bool,
        host: bytes | None,
        trailers: Fields | None = None,
    ) -> RequestReceived: ...


# The most of an unwanted body's rest that is read and dropped to keep the connection.
DISCARD_LIMIT = 64 * 1024


class IncomingBody:
    """Where the body being received stands: its framing, what is left, its trailers.

    One per connection, reused for each request body (`begin`).
    """

    __slots__ = (
        "_reader",
        "chunked",
        "discarding",
        "head",
        "keep_alive",
        "remaining",
        "trailers",
    )

    def __init__(self, reader: MessageReader) -> None:
        self._reader = reader
        self.head: PendingHead | None = None  # until delivered, with or without the body
        self.chunked = False
        self.remaining = 0  # octets a Content-Length body still owes
        self.keep_alive = True  # of its request: reading stops after it if False
        self.discarding = False  # answered already: what arrives is dropped
        self.trailers: list[tuple[bytes, bytes]] | None = None

    def begin(self, head: PendingHead, chunked: bool, length: int) -> IncomingBody:
        self.head = head
        self.chunked = chunked
        self.remaining = length
        self.keep_alive = head[4]
        self.discarding = False
        self.trailers = None
        if chunked:
            self._reader.start_chunked()
        return self

    def read_into(self, events: list[Event], deliver: Deliver) -> bool:
        """Append the events for what is buffered of the body; True once it has ended.

        The first call comes with the head: a body that is all there is delivered with
        it, whole; otherwise the head goes out alone (body None) and the parts follow."""
        data, ended = self.read()
        head = self.head
        if head is not None:
            self.head = None
            method, target, version, headers, keep_alive, host = head
            if ended:
                events.append(
                    deliver(method, target, version, headers, data, keep_alive, host, self.trailers)
                )
                return True
            events.append(deliver(method, target, version, headers, None, keep_alive, host))
            if data:
                events.append(BodyReceived(data))
            return False
        if data and not self.discarding:
            events.append(BodyReceived(data))
        if not ended:
            return False
        if not self.discarding:
            events.append(BodyEnded(self.trailers))
        return True

    def read(self) -> tuple[bytes, bool]:
        """(the body octets buffered now, b"" if none; whether the body has ended)."""
        if not self.chunked:
            data = self._reader.read_fixed_part(self.remaining)
            self.remaining -= len(data)
            return data, not self.remaining
        parts: list[bytes] = []
        trailers = self._reader.read_chunked_parts(parts)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if trailers is None:
            return data, False
        self.trailers = trailers or None
        return data, True

    def abandon(self) -> bool:
        """The request has its complete answer: drop the rest of the body as it comes.
        False when that rest is too long to read: the connection must close instead."""
        self.discarding = True
        if self.chunked:
            self._reader.limit_chunked(DISCARD_LIMIT)  # past it, reading fails and closes
            return True
        return self.remaining <= DISCARD_LIMIT


def expects_continue(expect: list[bytes] | None) -> bool:
    """Whether the Expect field values (of an HTTP/1.1 request) ask for ``100 Continue``;
    None when there is no such field. Any other expectation cannot be met (417)."""
    if expect is None:
        return False
    tokens = {t.strip(b" \t").lower() for t in b",".join(expect).split(b",")}
    if tokens != {b"100-continue"}:
        raise H1Error("unsupported expectation", 417)
    return True
