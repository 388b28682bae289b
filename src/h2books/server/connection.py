"""What every protocol adapter shares: the transport, reads, writes, backpressure, the log.

A protocol adapter (`server/adapters/h1.py`, `h2.py`) is an asyncio BufferedProtocol
around one sans-IO core. This base class holds everything that does not depend on the
protocol; the adapter feeds its core, turns the core's events into `Exchange`s for the
interface above, and carries out the exchanges' response calls on its core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from h2books.http import Response
from h2books.server.exchange import Exchange, Fields

if TYPE_CHECKING:
    from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")

# Writes at least this big go to the transport at once rather than at the end of the loop
# iteration, so that its pause_writing is seen before the next one is queued.
FLUSH_NOW = 64 * 1024
# During a read, output is written once per batch, except that a full TLS record's worth
# queued goes out at once when the connection has the server to itself (the read before
# was its own too): a read that brings a hundred requests then lets the peer read, and send
# its next requests, while the rest are answered, instead of each side waiting for the
# other in turn. With other connections keeping the server busy there is nothing to
# overlap, and the write would only cost. benchmarks/PROFILE.md, "Writing during a read".
WRITE_DURING_READ = 16 * 1024


class ServerConnection(asyncio.BufferedProtocol):
    # Each adapter's core: bytes in, events out, and its own deadlines (get_timer and
    # handle_timer); the event type with which a deadline ends the connection.
    conn: Any
    timed_out_event: ClassVar[type]

    # Slots keep an idle connection small (docs/security.md: memory per connection).
    __slots__ = (
        "_closing",
        "_flush_scheduled",
        "_in_read",
        "_paused_reading",
        "_paused_writing",
        "client",
        "client_host",
        "interface_data",
        "last_activity",
        "scheme",
        "server",
        "state",
        "transport",
    )

    def __init__(self, state: ServerState, scheme: str) -> None:
        self.state = state
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.client_host = "-"
        # The local address the peer connected to (the listening socket's; ASGI's `server`).
        self.server: tuple[str, int] | None = None
        # What the interface above keeps per connection (ASGI: the constant part of scope).
        self.interface_data: Any = None
        self._closing = False
        self._flush_scheduled = False
        # Inside data_received, which writes once at its end (only a burst of pushes
        # writes during it, each 64 KiB: adapters/h2.py).
        self._in_read = False
        self._paused_reading = False
        self._paused_writing = False
        self.last_activity = state.loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports are not asyncio.Transport subclasses, so cast rather than check.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.client = (str(peer[0]), int(peer[1]))
            self.client_host = self.client[0]
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple) and len(local) >= 2:
            self.server = (str(local[0]), int(local[1]))
        limits = self.state.config.limits
        transport.set_write_buffer_limits(
            high=limits.write_buffer_high, low=limits.write_buffer_low
        )
        self.state.connections.add(self)
        self.connected()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections.discard(self)
        self._closing = True
        for exchange in list(self.live_exchanges()):
            exchange.lose()
        self.forget_exchanges()

    def pause_writing(self) -> None:
        # The peer is not reading what we send: stop reading what it sends.
        self._paused_writing = True
        self.pause_reading()

    def resume_writing(self) -> None:
        self._paused_writing = False
        self.maybe_resume_reading()
        for exchange in self.live_exchanges():
            exchange.wake()

    # A BufferedProtocol, so that the TLS layer decrypts straight into the server's shared
    # read buffer: as a plain Protocol, uvloop allocates a 256 KiB bytes object per read.
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.state.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.state.read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        raise NotImplementedError

    # -- reading ------------------------------------------------------------------------

    def pause_reading(self) -> None:
        if self.transport is not None and not self._paused_reading and not self._closing:
            self._paused_reading = True
            self.transport.pause_reading()

    def maybe_resume_reading(self) -> None:
        if (
            self._paused_reading
            and not self._paused_writing
            and not self._closing
            and self.transport is not None
            and self.may_read()
        ):
            self._paused_reading = False
            self.transport.resume_reading()
            self.reading_resumed()

    # -- writing ------------------------------------------------------------------------

    def schedule_flush(self) -> None:
        """One write at the end of this loop iteration, whatever produced output in it."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.state.loop.call_soon(self.flush)

    def output_ready(self) -> None:
        """The core has output from outside a read (a task answered): write it soon."""
        if not self._in_read and not self._flush_scheduled:
            self._flush_scheduled = True
            self.state.loop.call_soon(self.flush)

    def body_queued(self, size: int) -> None:
        """`size` bytes of a response body went to the core: a big write goes out at once,
        so that backpressure is seen before the next one; a small one with the rest of
        this loop iteration's output."""
        if size >= FLUSH_NOW and not self._in_read:
            self.flush()
        else:
            self.output_ready()

    def close_transport(self) -> None:
        self._closing = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # -- timeouts: the rules are the core's; the runtime only passes the time ---------------

    def check_timeouts(self, now: float) -> None:
        """Called by the server's one timer for every connection: let the core apply the
        rules whose deadlines have passed, then write what it queued (a GOAWAY) and close
        the transport the way the rule says."""
        if self._closing or self.transport is None:
            return
        conn = self.conn
        deadline = conn.get_timer()
        if deadline is None or now < deadline:
            return
        timed_out: Any = None
        for event in conn.handle_timer(now):
            if type(event) is self.timed_out_event:
                timed_out = event
        # Write what the rules queued; flush also closes when the core is done (say, the
        # final GOAWAY of a graceful shutdown went out at its grace deadline).
        self.flush()
        if timed_out is None:
            return
        log.debug("%s: %s timeout", self.client_host, timed_out.rule)
        if timed_out.graceful:
            self.close_transport()
        else:
            self.abort()

    # -- the access log -----------------------------------------------------------------

    def log_exchange(self, exchange: Exchange, status: int, size: int) -> None:
        access_log = self.state.access_log
        if access_log is None:
            return
        referer = user_agent = None
        for name, value in exchange.headers:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
        access_log.record(
            self.client_host,
            exchange.method.decode("latin-1"),
            exchange.target.decode("latin-1"),
            _PROTOCOL_LABELS.get(exchange.http_version, "HTTP/" + exchange.http_version),
            status,
            size,
            referer,
            user_agent,
        )

    # -- what each adapter provides -----------------------------------------------------

    def connected(self) -> None:
        """The transport is set: start the core."""

    def live_exchanges(self) -> Iterable[Exchange]:
        raise NotImplementedError

    def forget_exchanges(self) -> None:
        raise NotImplementedError

    def may_read(self) -> bool:
        return True

    def reading_resumed(self) -> None:
        """Reading restarted after a pause (input the core held back may be ready)."""

    def flush(self) -> None:
        raise NotImplementedError

    def body_taken(self, exchange: Exchange, size: int) -> None:
        """The layer above took `size` body bytes: the adapter may give credit back."""

    # The response calls of an Exchange, carried out on the core.
    def respond(self, exchange: Exchange, response: Response, body: bytes) -> None:
        """Send `response` whole, with `body` (b"" for HEAD) for its body."""
        raise NotImplementedError

    def start(self, exchange: Exchange, response: Response) -> None:
        raise NotImplementedError

    def write(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        raise NotImplementedError

    def end(self, exchange: Exchange, trailers: Fields | None) -> None:
        raise NotImplementedError

    def inform(self, exchange: Exchange, status: int, fields: Fields) -> None:
        raise NotImplementedError

    def accept_tunnel(self, exchange: Exchange, fields: Fields) -> int:
        """Answer an upgrade request with the protocol's acceptance; returns its status."""
        raise NotImplementedError

    def push(self, exchange: Exchange, path: bytes, fields: Fields) -> bool:
        """Server push of a GET for `path` (HTTP/2 with --push only: see adapters/h2.py)."""
        return False

    @property
    def can_push(self) -> bool:
        """Whether a push could go out on this connection now (the server allows it, the
        protocol has it, the peer has not disabled it)."""
        return False

    def reset(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def writable(self, exchange: Exchange) -> bool:
        raise NotImplementedError

    # Server housekeeping.
    def shutdown_tunnels(self) -> None:
        """A graceful shutdown began: tell every open tunnel (WebSockets close with 1001)."""
        for exchange in list(self.live_exchanges()):
            callback = exchange.on_shutdown
            if callback is not None:
                exchange.on_shutdown = None
                callback()

    def is_idle(self) -> bool:
        raise NotImplementedError

    def shutdown(self) -> None:
        raise NotImplementedError

    def evict(self) -> None:
        raise NotImplementedError


_PROTOCOL_LABELS = {"2": "HTTP/2.0", "1.1": "HTTP/1.1", "1.0": "HTTP/1.0", "3": "HTTP/3"}
