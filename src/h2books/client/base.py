"""What the client's connection classes share: the owner interface, the lifecycle, timeouts.

`ClientConnection` holds everything that does not depend on the protocol: the
queue of requests not yet sent, the ALPN check, how a connection stops taking
requests, fails, closes and times requests out. `H1ClientProtocol` and
`H2ClientProtocol` fill in the requests in flight (one, or one per stream) and
the per-request paths (submit, reads, writes), which stay in the subclasses so
that nothing on them costs an extra call.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol, cast

from h2books.client.errors import ClientError, RemoteClosedError, RequestTimeout
from h2books.client.exchange import Exchange
from h2books.client.origin import Origin
from h2books.client.stats import WireStats

__all__ = ["ClientConnection", "ConnectionOwner", "ConnectionSettings", "Watchdog", "WireTap"]


class ConnectionOwner(Protocol):
    """The client-side slot a connection belongs to (see `h2books.client.client`)."""

    def requeue(self, exchanges: Iterable[Exchange], error: ClientError) -> None:
        """Requests this connection accepted but never sent: try them elsewhere."""

    def retire(self, connection: object) -> None:
        """This connection takes no new requests any more (closing, GOAWAY, keep-alive off)."""

    def promised(self, target: bytes, started: float) -> Exchange | None:
        """The server promised to push the response to a GET of `target` (HTTP/2): the
        exchange its response goes to (kept for whoever asks for `target`), or None to
        decline the push."""


class WireTap(Protocol):
    """Counts one direction of a connection's bytes (see `h2books.client.stats`)."""

    def feed(self, data: bytes) -> None: ...


class ConnectionSettings:
    """What every connection of one client shares, computed once."""

    __slots__ = ("extra_fields", "max_response_size", "origin", "push", "stats", "timeout")

    def __init__(
        self,
        origin: Origin,
        extra_fields: tuple[tuple[bytes, bytes], ...],
        timeout: float | None,
        max_response_size: int,
        stats: WireStats | None = None,
        push: bool = False,
    ) -> None:
        self.origin = origin
        self.push = push  # HTTP/2: announce SETTINGS_ENABLE_PUSH=1 and take pushed responses
        self.extra_fields = extra_fields  # sent with every request (user-agent, ...)
        self.timeout = timeout  # per request, from submission to the complete response
        self.max_response_size = max_response_size
        self.stats = stats  # counts the bytes on the wire, when asked for


class Watchdog:
    """One timer per connection that fires only while requests are waiting.

    A timer per request would cost a heap push and a cancel every time; checking
    the oldest requests a few times per timeout period costs nothing on the fast path.
    """

    __slots__ = ("_check", "_handle", "_loop", "_period")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float | None,
        check: Callable[[float], bool],
    ) -> None:
        self._loop = loop
        self._period = None if timeout is None else max(timeout / 4, 0.01)
        self._check = check
        self._handle: asyncio.TimerHandle | None = None

    def arm(self) -> None:
        if self._handle is None and self._period is not None:
            self._handle = self._loop.call_later(self._period, self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        # check(now) returns whether requests are still waiting.
        if self._check(self._loop.time()):
            self.arm()


class ClientConnection(asyncio.Protocol, abc.ABC):
    """One client connection to one origin, whatever its protocol.

    A subclass says what is in flight (`outstanding`, `_take_in_flight`), what to
    do when the transport is up (`_start`), lost (`_lose_in_flight`) or timed out
    (`_expire`), and how its transport ends (`_close_transport`, `_drop_transport`).
    """

    http_version: str  # for `Response.http_version`

    def __init__(self, owner: ConnectionOwner, settings: ConnectionSettings) -> None:
        self._owner = owner
        self._where = settings.origin.address
        self._settings = settings
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._queue: deque[Exchange] = deque()  # submitted, not sent yet
        self._accepting = True  # takes new requests
        self._lost = False
        self._error: ClientError | None = None  # why the connection failed, once it has
        self.setup_error: ClientError | None = None
        # Done when the transport is gone (`Client.aclose` waits for it).
        self.closed_future: asyncio.Future[None] = self._loop.create_future()
        self._watchdog = Watchdog(self._loop, settings.timeout, self._check_timeouts)
        # Fed what is written and what is read, when the client counts the bytes on the wire.
        self._out_tap: WireTap | None = None
        self._in_tap: WireTap | None = None
        if settings.stats is not None:
            self._out_tap, self._in_tap = self._wire_taps(settings.stats)

    # -- state for the owner --------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """Whether new requests may be submitted to this connection."""
        return self._accepting

    @property
    def error(self) -> ClientError | None:
        """Why the connection failed, once it has."""
        return self.setup_error or self._error

    @property
    @abc.abstractmethod
    def outstanding(self) -> int:
        """Requests submitted and not yet answered (in flight plus queued)."""

    @abc.abstractmethod
    def submit(self, exchange: Exchange) -> None:
        """Send the request now if the protocol allows, or queue it."""

    @staticmethod
    @abc.abstractmethod
    def _wire_taps(stats: WireStats) -> tuple[WireTap, WireTap]:
        """The taps of this protocol (outgoing, incoming) that count into `stats`."""

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            error = self._alpn_error(ssl_object.selected_alpn_protocol())
            if error is not None:
                self.setup_error = error
                self._accepting = False
                transport.abort()
                return
        self._start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self.closed_future.done():
            self.closed_future.set_result(None)
        self._accepting = False
        self._watchdog.cancel()
        self._lose_in_flight()
        self._hand_back_queue(
            self._error or RemoteClosedError(f"{self._where} closed the connection")
        )
        self._owner.retire(self)

    @abc.abstractmethod
    def _alpn_error(self, alpn: str | None) -> ClientError | None:
        """Why the protocol the server chose in ALPN will not do, or None if it will."""

    @abc.abstractmethod
    def _start(self) -> None:
        """The transport is up and the protocol agreed: send what is waiting."""

    @abc.abstractmethod
    def _lose_in_flight(self) -> None:
        """The transport is gone: retry or fail every request in flight."""

    # -- ending ---------------------------------------------------------------------------

    def _stop_accepting(self) -> None:
        if self._accepting:
            self._accepting = False
            self._owner.retire(self)

    def _hand_back_queue(self, error: ClientError) -> None:
        """Requests never sent go back to the owner, which tries them on another connection."""
        if self._queue:
            queued, self._queue = self._queue, deque()
            self._owner.requeue(queued, error)

    def _fail_connection(self, error: ClientError) -> None:
        """A connection-level failure: every request in flight fails with `error`, then close."""
        if self._error is None:
            self._error = error
        self._stop_accepting()
        for exchange in self._take_in_flight():
            exchange.fail(self._for_request(error, exchange))
        self._hand_back_queue(error)
        self._drop_transport()

    def close(self) -> None:
        """Close now; requests still waiting are cancelled."""
        self._stop_accepting()
        self._watchdog.cancel()
        for exchange in self._take_in_flight():
            exchange.cancel()
        queued, self._queue = self._queue, deque()
        for exchange in queued:
            exchange.cancel()
        self._close_transport()

    def _closed_early(self, exchange: Exchange | None, detail: str = "") -> RemoteClosedError:
        label = exchange.label if exchange is not None else "a request"
        return RemoteClosedError(
            f"{self._where} closed the connection before the response to {label} "
            f"was complete{detail}"
        )

    @abc.abstractmethod
    def _take_in_flight(self) -> Iterable[Exchange]:
        """The requests sent and not answered yet, which this connection forgets."""

    @abc.abstractmethod
    def _for_request(self, error: ClientError, exchange: Exchange) -> ClientError:
        """The connection's error as the request in flight `exchange` gets it."""

    @abc.abstractmethod
    def _close_transport(self) -> None:
        """End the transport in good order (`close`)."""

    @abc.abstractmethod
    def _drop_transport(self) -> None:
        """End the transport after a failure (`_fail_connection`)."""

    # -- timeouts ---------------------------------------------------------------------------

    def _check_timeouts(self, now: float) -> bool:
        """Fail the requests older than the timeout; returns whether any are still waiting."""
        timeout = self._settings.timeout
        if timeout is None or self._lost:
            return False
        self._expire(now - timeout, timeout)
        return bool(self.outstanding)

    def _expire_queue(self, deadline: float, timeout: float) -> None:
        """Fail the queued requests submitted at or before `deadline`."""
        queue = self._queue
        while queue and queue[0].started <= deadline:
            exchange = queue.popleft()
            exchange.fail(self._timeout_error(exchange, timeout))

    def _timeout_error(self, exchange: Exchange, timeout: float) -> RequestTimeout:
        return RequestTimeout(
            f"no response from {self._where} to {exchange.label} within {timeout:g} s"
        )

    @abc.abstractmethod
    def _expire(self, deadline: float, timeout: float) -> None:
        """Fail the requests in flight and queued that were submitted at or before `deadline`."""
