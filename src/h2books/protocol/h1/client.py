"""The client side of an HTTP/1.1 connection (RFC 9112), sans-IO.

Used by the load generator and by tests. Requests may be pipelined; each
response is matched to the oldest request still unanswered. Malformed input
raises `H1Error`; responses completed before the malformed part are returned
first and the error is raised by the next `receive_data` call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.events import (
    ConnectionClosed,
    Event,
    InformationalResponse,
    ResponseReceived,
)
from h2books.protocol.h1.framing import CHUNKED, FIXED, NO_BODY, TUNNEL, UNTIL_CLOSE, body_framing
from h2books.protocol.h1.parser import (
    TOKEN_CHARS,
    keep_alive_of,
    parse_fields,
    parse_status_line,
)
from h2books.protocol.h1.reader import MessageReader
from h2books.protocol.h1.serializer import encode_fields

__all__ = ["H1ClientConnection"]

_HEAD, _FIXED, _CHUNKED, _UNTIL_CLOSE = 0, 1, 2, 3

# Methods whose requests carry content, so an empty body is still announced.
_BODY_METHODS = frozenset((b"POST", b"PUT", b"PATCH"))
_TARGET_CHARS = bytes(range(0x21, 0x7F))
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))

_PendingResponse = tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bool]


class H1ClientConnection:
    """One HTTP/1.1 client connection: requests out, `ResponseReceived` events in."""

    __slots__ = (
        "_body_length",
        "_closing",
        "_done",
        "_eof",
        "_error",
        "_max_body",
        "_methods",
        "_out",
        "_plain_fields",
        "_reader",
        "_response",
        "_state",
    )

    def __init__(self, config: H1Config | None = None) -> None:
        config = config or H1Config()
        self._reader = MessageReader(config, 400)
        self._max_body = config.max_body_size
        self._out: list[bytes] = []
        self._methods: deque[bytes] = deque()  # of requests awaiting their response
        self._state = _HEAD
        self._response: _PendingResponse | None = None
        self._body_length = 0
        self._closing = False  # a request asked to close: send no more
        self._done = False  # the response that ends the connection was received
        self._eof = False
        self._error: H1Error | None = None
        # (fields tuple, its encoded lines) of the last request without framing fields.
        self._plain_fields: tuple[object, bytes] | None = None

    @property
    def pending_error(self) -> H1Error | None:
        """A malformed response seen after complete ones in the same read; the next
        `receive_data` raises it. A runtime can act on it without waiting for more bytes."""
        return self._error

    @property
    def unanswered(self) -> int:
        """Requests sent whose final response has not been received."""
        return len(self._methods)

    def send_request(
        self,
        method: bytes,
        target: bytes,
        fields: Iterable[tuple[bytes, bytes]],
        body: bytes = b"",
    ) -> None:
        """Queue a request; adds content-length when a body (or the method) needs it.

        ``fields`` must include ``host``. With ``transfer-encoding: chunked``
        the body is sent as one chunk.
        """
        if self._closing or self._done:
            raise H1Error("the connection closes after an earlier request")
        if not method or method.translate(None, TOKEN_CHARS):
            raise H1Error("invalid method")
        if method == b"CONNECT":
            raise H1Error("CONNECT is not supported")
        if not target or target.translate(None, _TARGET_CHARS):
            raise H1Error("invalid request target")
        request_line = method + b" " + target + b" HTTP/1.1\r\n"
        cached = self._plain_fields
        if cached is not None and cached[0] is fields:
            # The same tuple as last time: already validated, and it has a host and no
            # framing or connection field, so only the body needs thought.
            if body or method in _BODY_METHODS:
                tail = b"content-length: %d\r\n\r\n" % len(body)
                self._out += (request_line, cached[1], tail, body)
            else:
                self._out += (request_line, cached[1], b"\r\n")
            self._methods.append(method)
            return
        out = [request_line]
        encode_fields(fields, out)
        names = [name.lower() for name in out[1::4]]
        values = out[3::4]
        if b"host" not in names:
            raise H1Error("an HTTP/1.1 request needs a host field")
        if b"transfer-encoding" in names:
            if b"content-length" in names:
                raise H1Error("both content-length and transfer-encoding")
            coding = values[names.index(b"transfer-encoding")].strip(b" \t").lower()
            if coding != b"chunked" or names.count(b"transfer-encoding") != 1:
                raise H1Error("only transfer-encoding: chunked is supported")
            body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
        elif b"content-length" in names:
            declared = [v for n, v in zip(names, values, strict=True) if n == b"content-length"]
            if declared != [b"%d" % len(body)]:
                raise H1Error("content-length does not match the body")
        elif body or method in _BODY_METHODS:
            out.append(b"content-length: %d\r\n" % len(body))
        connection = [v for n, v in zip(names, values, strict=True) if n == b"connection"]
        if connection and not keep_alive_of(connection, b"1.1"):
            self._closing = True
        if type(fields) is tuple and _FRAMING.isdisjoint(names):
            # A tuple cannot change: the next request passing this very one skips the work.
            self._plain_fields = (fields, b"".join(out[1 : 1 + 4 * len(names)]))
        out.append(b"\r\n")
        if body:
            out.append(body)
        self._out += out
        self._methods.append(method)

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Feed bytes received at ``now`` (``b""`` for EOF); returns the events they complete.

        The client role has no deadline rules yet; ``now`` is taken for the day it has.
        """
        if self._error is not None:
            raise self._error
        if self._done:
            return []
        if data:
            self._reader.feed(data)
        else:
            self._eof = True
        events: list[Event] = []
        try:
            self._parse_into(events)
        except H1Error as exc:
            self._error = exc
            if not events:
                raise
        return events

    def _parse_into(self, events: list[Event]) -> None:
        reader = self._reader
        while not self._done:
            state = self._state
            if state == _HEAD:
                lines = reader.read_head()
                if lines is None:
                    break
                self._start_response(lines, events)
            elif state == _UNTIL_CLOSE:
                reader.read_until_close()
                break
            else:
                if state == _FIXED:
                    body = reader.read_fixed(self._body_length)
                    trailers = None
                else:
                    body = reader.read_chunked()
                    trailers = reader.trailers or None
                if body is None:
                    break
                self._complete(body, events, trailers)
        if not self._eof or self._done:
            return
        if self._state == _UNTIL_CLOSE:
            self._complete(reader.finish_until_close(), events)
        elif self._state == _HEAD and reader.only_empty_lines_left():
            self._done = True
            events.append(ConnectionClosed())
        else:
            raise H1Error("connection closed in the middle of a response")

    def _start_response(self, lines: list[bytes], events: list[Event]) -> None:
        version, status, reason = parse_status_line(lines[0])
        headers, framing = parse_fields(lines)
        if not self._methods:
            raise H1Error("response received with no request outstanding")
        if status < 200:
            if status == 101:
                raise H1Error("101 Switching Protocols is not supported")
            events.append(InformationalResponse(status, headers))
            return
        body, length = body_framing(framing, version, self._methods[0], status)
        if length > self._max_body:
            raise H1Error("response body too large")
        if body == TUNNEL:  # unreachable while send_request refuses CONNECT
            raise H1Error("a tunnel is not supported")
        # A body that runs until the close leaves no connection to keep.
        keep_alive = body != UNTIL_CLOSE and keep_alive_of(framing.get(b"connection"), version)
        self._response = (status, reason, version, headers, keep_alive)
        if body == NO_BODY:
            self._complete(b"", events)
        elif body == FIXED:
            self._body_length = length
            self._state = _FIXED
        elif body == CHUNKED:
            self._reader.start_chunked()
            self._state = _CHUNKED
        else:
            self._state = _UNTIL_CLOSE

    def _complete(
        self, body: bytes, events: list[Event], trailers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        assert self._response is not None
        status, reason, version, headers, keep_alive = self._response
        self._response = None
        self._state = _HEAD
        self._methods.popleft()
        events.append(
            ResponseReceived(status, reason, version, headers, body, keep_alive, trailers)
        )
        if not keep_alive:
            self._done = True
            self._closing = True
