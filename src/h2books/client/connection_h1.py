"""One HTTP/1.1 client connection: keep-alive, one request at a time, no pipelining.

Requests submitted while one is in flight wait in a queue; the next one goes
out as soon as the previous response is complete, from the same read, so the
connection never idles between responses. When the server ends keep-alive,
the queue goes back to the owner, which opens a new connection for it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

from h2books.client.base import ConnectionOwner, ConnectionSettings, Watchdog
from h2books.client.errors import ClientError, ProtocolError, RemoteClosedError, RequestTimeout
from h2books.client.exchange import Exchange
from h2books.client.origin import Origin
from h2books.client.stats import H1StreamTap, WireStats
from h2books.protocol.h1 import Event, H1ClientConnection, H1Config, H1Error, ResponseReceived

__all__ = ["H1ClientProtocol"]

_VERSIONS = {b"1.1": "HTTP/1.1", b"1.0": "HTTP/1.0"}
# Safe to send again when a reused connection closes before any byte of the response.
_IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"))


class H1ClientProtocol(asyncio.Protocol):
    """Drives one client-side `H1ClientConnection` over a transport."""

    http_version = "HTTP/1.1"

    def __init__(
        self,
        owner: ConnectionOwner,
        origin: Origin,
        settings: ConnectionSettings,
        stats: WireStats | None = None,
    ) -> None:
        self._owner = owner
        self._where = origin.address
        self._settings = settings
        self._loop = asyncio.get_running_loop()
        self._conn = H1ClientConnection(H1Config(max_body_size=settings.max_response_size))
        self._transport: asyncio.Transport | None = None
        self._current: Exchange | None = None
        self._queue: deque[Exchange] = deque()
        # The fields of every request, as one tuple: the core encodes it once.
        self._fields = ((b"host", origin.authority.encode("ascii")), *settings.extra_fields)
        self._accepting = True
        self._lost = False
        self._answered = 0  # responses completed on this connection
        self._response_started = False  # bytes arrived since the current request went out
        self._error: ClientError | None = None  # why the connection failed, once it has
        self.setup_error: ClientError | None = None
        # Done when the transport is gone (`Client.aclose` waits for it).
        self.closed_future: asyncio.Future[None] = self._loop.create_future()
        self._watchdog = Watchdog(self._loop, settings.timeout, self._check_timeouts)
        self._out_tap: H1StreamTap | None = None
        self._in_tap: H1StreamTap | None = None
        if stats is not None:
            self._out_tap, self._in_tap = stats.h1_taps()

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def error(self) -> ClientError | None:
        """Why the connection failed, once it has."""
        return self.setup_error or self._error

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

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            alpn = ssl_object.selected_alpn_protocol()
            if alpn not in (None, "http/1.1"):
                self.setup_error = ProtocolError(
                    f"{self._where} chose {alpn!r} in ALPN when offered only 'http/1.1'"
                )
                self._accepting = False
                transport.abort()
                return
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
            self._fail_connection(self._closed_early(exc.reason))
            return None
        self._on_events(events)
        if self._current is not None and not self._retry_current():
            self._fail_connection(self._closed_early(None))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        self._accepting = False
        self._watchdog.cancel()
        if self._current is not None and not self._retry_current():
            self._current.fail(self._closed_early(None))
        self._current = None
        self._hand_back_queue(RemoteClosedError(f"{self._where} closed the connection"))
        self._owner.retire(self)

    # -- responses --------------------------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        answered: list[tuple[Exchange, ResponseReceived]] = []
        for event in events:
            if not isinstance(event, ResponseReceived):
                continue  # 1xx interim responses, ConnectionClosed
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
        error = self._closed_early(None)
        self._current = None
        self._stop_accepting()
        self._owner.requeue([current], error)
        return True

    def _malformed(self, exc: H1Error) -> ProtocolError:
        label = self._current.label if self._current is not None else "no request"
        return ProtocolError(
            f"malformed HTTP/1.1 response from {self._where} to {label}: {exc.reason}"
        )

    def _closed_early(self, reason: str | None) -> ClientError:
        label = self._current.label if self._current is not None else "a request"
        detail = f" ({reason})" if reason else ""
        return RemoteClosedError(
            f"{self._where} closed the connection before the response to {label} "
            f"was complete{detail}"
        )

    # -- ending ---------------------------------------------------------------------------

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._owner.retire(self)

    def _hand_back_queue(self, error: ClientError) -> None:
        if self._queue:
            queued, self._queue = self._queue, deque()
            self._owner.requeue(queued, error)

    def _fail_connection(self, error: ClientError) -> None:
        if self._error is None:
            self._error = error
        self._stop_accepting()
        current, self._current = self._current, None
        if current is not None:
            current.fail(error)
        self._hand_back_queue(error)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """Close now; requests still waiting are cancelled."""
        self._stop_accepting()
        self._watchdog.cancel()
        if self._current is not None:
            self._current.future.cancel()
            self._current = None
        queued, self._queue = self._queue, deque()
        for exchange in queued:
            exchange.future.cancel()
        if self._transport is not None and not self._lost:
            self._transport.close()

    def _check_timeouts(self, now: float) -> bool:
        timeout = self._settings.timeout
        if timeout is None or self._lost:
            return False
        deadline = now - timeout
        current = self._current
        if current is not None and current.started <= deadline:
            # A response that never comes blocks the connection: give it up.
            self._fail_connection(
                RequestTimeout(
                    f"no response from {self._where} to {current.label} within {timeout:g} s"
                )
            )
            return False
        queue = self._queue
        while queue and queue[0].started <= deadline:
            exchange = queue.popleft()
            exchange.fail(
                RequestTimeout(
                    f"no response from {self._where} to {exchange.label} within {timeout:g} s"
                )
            )
        return bool(self._current is not None or self._queue)
