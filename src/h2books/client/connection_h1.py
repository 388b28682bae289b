"""One HTTP/1.1 client connection: keep-alive, one request at a time, no pipelining.

Requests submitted while one is in flight wait in a queue; the next one goes
out as soon as the previous response is complete, from the same read, so the
connection never idles between responses. When the server ends keep-alive,
the queue goes back to the owner, which opens a new connection for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from h2books.client.base import ClientConnection, ConnectionOwner, ConnectionSettings
from h2books.client.errors import ClientError, ProtocolError, RemoteClosedError
from h2books.client.exchange import Exchange
from h2books.client.stats import H1StreamTap, WireStats
from h2books.protocol.h1 import (
    Event,
    H1ClientConnection,
    H1Config,
    H1Error,
    InformationalResponse,
    ResponseReceived,
)

__all__ = ["H1ClientProtocol"]

_VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}
# Safe to send again when a reused connection closes before any byte of the response.
_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"))


class H1ClientProtocol(ClientConnection):
    """Drives one client-side `H1ClientConnection` over a transport."""

    http_version = "HTTP/1.1"

    def __init__(self, owner: ConnectionOwner, settings: ConnectionSettings) -> None:
        super().__init__(owner, settings)
        origin = settings.origin
        self._conn = H1ClientConnection(H1Config(max_body_size=settings.max_response_size))
        self._current: Exchange | None = None  # the one request in flight
        # The fields of every request, as one tuple: the core encodes it once.
        self._fields = ((b"host", origin.authority.encode("ascii")), *settings.extra_fields)
        self._answered = 0  # responses completed on this connection
        self._response_started = False  # bytes arrived since the current request went out

    @staticmethod
    def _wire_taps(stats: WireStats) -> tuple[H1StreamTap, H1StreamTap]:
        return stats.h1_taps()

    @property
    def outstanding(self) -> int:
        return len(self._queue) + (self._current is not None)

    # -- requests ---------------------------------------------------------------------------

    def submit(self, exchange: Exchange) -> None:
        if self._current is None and self._transport is not None:
            self._send(exchange)
        else:
            self._queue.append(exchange)
        self._watchdog.arm()

    def _send(self, exchange: Exchange) -> None:
        self._current = exchange
        self._response_started = False
        fields = (*self._fields, *exchange.fields) if exchange.fields else self._fields
        try:
            self._conn.send_request(exchange.method, exchange.target, fields, exchange.body)
        except H1Error as exc:
            # Our own request was unsendable (a CR/LF in a field value, say).
            self._current = None
            exchange.fail(ValueError(f"cannot send {exchange.label}: {exc.reason}"))
            return
        self._write()

    def _write(self) -> None:
        data = self._conn.data_to_send()
        if data and self._transport is not None and not self._lost:
            self._transport.write(data)
            if self._out_tap is not None:
                self._out_tap.feed(data)

    # -- asyncio.Protocol (the rest is in ClientConnection) ------------------------------

    def _alpn_error(self, alpn: str | None) -> ClientError | None:
        if alpn in (None, "http/1.1"):
            return None
        return ProtocolError(f"{self._where} chose {alpn!r} in ALPN when offered only 'http/1.1'")

    def _start(self) -> None:
        if self._queue:
            self._send(self._queue.popleft())

    def data_received(self, data: bytes) -> None:
        self._response_started = True
        conn = self._conn
        try:
            events = conn.receive_data(data, self._loop.time())
        except H1Error as exc:
            if self._in_tap is not None:
                self._in_tap.feed(data)
            self._fail_connection(self._malformed(exc))
            return
        self._on_events(events)
        # Counted after the next request went out (in _on_events): off the round trip.
        if self._in_tap is not None:
            self._in_tap.feed(data)
        # The core hands out the responses parsed before malformed bytes and keeps the
        # error for its next call; nothing may come to make that call, so ask for it now.
        error = conn.pending_error
        if error is not None and not self._lost:
            self._fail_connection(self._malformed(error))

    def eof_received(self) -> bool | None:
        try:
            events = self._conn.receive_data(b"", self._loop.time())
        except H1Error as exc:
            detail = f" ({exc.reason})" if exc.reason else ""
            self._fail_connection(self._closed_early(self._current, detail))
            return None
        self._on_events(events)
        if self._current is not None and not self._retry_current():
            self._fail_connection(self._closed_early(self._current))
        return None

    def _lose_in_flight(self) -> None:
        current = self._current
        if current is not None and not self._retry_current():
            self._current = None
            current.fail(self._closed_early(current))

    # -- responses --------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        answered: list[tuple[Exchange, ResponseReceived]] = []
        for event in events:
            if not isinstance(event, ResponseReceived):
                if isinstance(event, InformationalResponse) and self._current is not None:
                    self._current.inform(event.status, event.headers)
                continue  # ConnectionClosed
            exchange = self._current
            if exchange is None:
                self._resolve(answered)
                self._fail_connection(
                    ProtocolError(f"{self._where} sent a response nobody asked for")
                )
                return
            self._current = None
            self._answered += 1
            answered.append((exchange, event))
            if not event.keep_alive:
                self._stop_accepting()
        if self._current is None:
            if self._accepting:
                if self._queue:
                    # The next request leaves before this answer is handed over, so the
                    # server works on it while the caller looks at this one.
                    self._send(self._queue.popleft())
            else:
                self._hand_back_queue(RemoteClosedError(f"{self._where} ended keep-alive"))
                if self._transport is not None:
                    self._transport.close()
        self._resolve(answered)

    @staticmethod
    def _resolve(answered: list[tuple[Exchange, ResponseReceived]]) -> None:
        for exchange, event in answered:
            exchange.status = event.status
            exchange.response_headers = event.headers
            exchange.response_trailers = event.trailers
            exchange.resolve(event.body, _VERSIONS.get(event.http_version, "HTTP/1.1"))

    def _retry_current(self) -> bool:
        """A kept-alive connection closed under a request that saw no answer yet.

        That is the race with the server's idle timeout (RFC 9112 §9.3.1): an
        idempotent request goes to a new connection instead of failing.
        """
        current = self._current
        if (
            current is None
            or self._response_started
            or not self._answered
            or current.method not in _IDEMPOTENT
        ):
            return False
        error = self._closed_early(current)
        self._current = None
        self._stop_accepting()
        self._owner.requeue([current], error)
        return True

    def _malformed(self, exc: H1Error) -> ProtocolError:
        label = self._current.label if self._current is not None else "no request"
        return ProtocolError(
            f"malformed HTTP/1.1 response from {self._where} to {label}: {exc.reason}"
        )

    # -- ending and timeouts (see ClientConnection) ----------------------------------------

    def _take_in_flight(self) -> Iterable[Exchange]:
        current, self._current = self._current, None
        return () if current is None else (current,)

    def _for_request(self, error: ClientError, exchange: Exchange) -> ClientError:
        return error  # the only request in flight: the error names it already

    def _close_transport(self) -> None:
        if self._transport is not None and not self._lost:
            self._transport.close()

    def _drop_transport(self) -> None:
        # HTTP/1.1 has nothing to say on the way out: end at once.
        if self._transport is not None:
            self._transport.abort()

    def _expire(self, deadline: float, timeout: float) -> None:
        current = self._current
        if current is not None and current.started <= deadline:
            # A response that never comes blocks the connection: give it up; the
            # queue goes back to the owner for a new connection.
            self._fail_connection(self._timeout_error(current, timeout))
            return
        self._expire_queue(deadline, timeout)
