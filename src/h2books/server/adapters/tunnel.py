"""An HTTP/1.1 connection after 101 Switching Protocols: raw bytes both ways, one exchange.

The HTTP/1.1 adapter hands the transport over (`transport.set_protocol`) once the
core has sent the 101, so the per-read path of plain HTTP/1.1 carries nothing for
tunnels. Here every read goes to the tunnel's exchange as it is (`feed_body`); reading
pauses while more than `max_unread` bytes wait for the layer above, and resumes as
it takes them (`body_taken`). The writes of one loop iteration go out together; ending our side
closes the socket once written (RFC 6455 §7.1.1: the server closes TCP first), a
reset aborts it. Timeouts are the layer above's (WebSocket pings), not an HTTP core's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from h2books.server.connection import FLUSH_NOW, ServerConnection
from h2books.server.exchange import Exchange, Fields
from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")


class TunnelProtocol(ServerConnection):
    __slots__ = ("_max_unread", "_out", "_out_size", "_unread", "exchange")
    conn = None
    timed_out_event = type(None)

    def __init__(self, state: ServerState, scheme: str, exchange: Exchange) -> None:
        super().__init__(state, scheme)
        self.exchange = exchange
        self._unread = 0  # bytes fed to the exchange that the layer above has not taken
        # As much as an HTTP/2 stream's window lets a peer send unread.
        self._max_unread = state.config.limits.initial_window_size
        # Writes of one loop iteration, written together (a WebSocket app answering a
        # burst of messages makes one syscall, and over TLS full records).
        self._out: list[bytes | memoryview] = []
        self._out_size = 0

    def take_over(
        self, transport: asyncio.Transport, client: tuple[str, int] | None, paused_reading: bool
    ) -> None:
        """Become the transport's protocol (the HTTP/1.1 adapter had paused reading)."""
        self.transport = transport
        self.client = client
        if client is not None:
            self.client_host = client[0]
        self._paused_reading = paused_reading
        self.state.connections.add(self)
        transport.set_protocol(self)
        self.exchange.adapter = self

    def feed(self, data: bytes, eof: bool) -> None:
        """The bytes the HTTP/1.1 core had read past the upgrade request, then read on."""
        if data:
            self.data_received(data)
        if eof:
            self.eof_received()
        else:
            self.maybe_resume_reading()

    # -- reading ------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        state = self.state
        state.last_reader = self
        self.last_activity = state.loop.time()
        self._unread += len(data)
        self.exchange.feed_body(data)
        if self._unread > self._max_unread:
            self.pause_reading()

    def eof_received(self) -> bool | None:
        self.exchange.end_body()
        # Over cleartext our side stays open until the layer above ends it. Over TLS the
        # peer's close_notify ends both directions (asyncio shuts the transport down
        # whatever we answer, and warns if we ask otherwise).
        return True if self.scheme == "http" else None

    def may_read(self) -> bool:
        return self._unread <= self._max_unread // 2

    def body_taken(self, exchange: Exchange, size: int) -> None:
        self._unread -= size
        if self._paused_reading:
            self.maybe_resume_reading()

    # -- writing ------------------------------------------------------------------------

    def write(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        transport = self.transport
        if transport is None or self._closing:
            return
        if data:
            if not self._flush_scheduled:
                # The first write of this loop iteration goes out at once (an answer to
                # one message waits for nothing); later ones join it at the iteration's
                # end (a burst of answers becomes one write).
                self.schedule_flush()
                self.last_activity = self.state.loop.time()
                transport.write(data)
            else:
                self._out.append(data)
                self._out_size += len(data)
                if self._out_size >= FLUSH_NOW:
                    # Out now, so that the transport's pause_writing is seen (`writable`).
                    self.flush()
        if end:
            self._end()

    def end(self, exchange: Exchange, trailers: Fields | None) -> None:
        self._end()

    def _end(self) -> None:
        self.flush()
        self.close_transport()

    def reset(self, exchange: Exchange) -> None:
        self.abort()
        exchange.lose()

    def writable(self, exchange: Exchange) -> bool:
        return not self._closing and not self._paused_writing

    def flush(self) -> None:
        self._flush_scheduled = False
        out = self._out
        transport = self.transport
        if not out or transport is None or self._closing:
            return
        self.last_activity = self.state.loop.time()
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()
        self._out_size = 0

    # -- the connection ---------------------------------------------------------------

    def live_exchanges(self) -> Iterable[Exchange]:
        return (self.exchange,)

    def forget_exchanges(self) -> None:
        return None

    def check_timeouts(self, now: float) -> None:
        return None  # the tunnel's protocol keeps itself alive (WebSocket pings)

    def is_idle(self) -> bool:
        return False

    def shutdown(self) -> None:
        self.shutdown_tunnels()

    def evict(self) -> None:
        return None  # never idle, so never chosen
