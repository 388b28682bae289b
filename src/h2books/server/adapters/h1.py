"""The HTTP/1.1 adapter: requests in order, responses in order, one write per read.

Pipelined requests are answered strictly in order. Each request becomes an exchange in
`_queue`; only the oldest may write. A sync handler's answer to the oldest request goes
straight into the core; an answer that is not yet due is held on its exchange until
the ones before it are done. Reading pauses while too many answers are owed or the
peer isn't reading.

A request body arrives in parts after its head (the core delivers it whole when it all
came with the head). The parts go to the exchange as they come (`feed_body`); what
exchanges hold unread is counted, and past `max_buffered_body` reading stops until the
app takes the bytes (`body_taken`): flow control over HTTP/1.1 is TCP's own. A body
wanted whole (the native API) is never held back: `max_body_size` bounds it.
`Expect: 100-continue` is answered by the core as soon as the request is the next to be
answered (as the HTTP/2 adapter does at once), not when the app first reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

from h2books.http import Response
from h2books.protocol.h1 import (
    BodyEnded,
    BodyReceived,
    ConnectionClosed,
    ConnectionTimedOut,
    H1Error,
    H1ServerConnection,
    ProtocolError,
    RequestReceived,
    UpgradeRequested,
    serialize_head,
)
from h2books.server.adapters.tunnel import TunnelProtocol
from h2books.server.connection import FLUSH_NOW, ServerConnection
from h2books.server.exchange import DONE, PENDING, STARTED, Exchange, Fields, new_exchange
from h2books.server.responses import h1_head
from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")

# A lingering close (see _close_lingering) ends after this long, or this much input.
LINGER_SECONDS = 2.0
LINGER_BYTES = 16 * 1024 * 1024


class H1ServerProtocol(ServerConnection):
    __slots__ = (
        "_close_when_done",
        "_counted",
        "_held",
        "_linger",
        "_lingered",
        "_queue",
        "_receiving",
        "_trailers_due",
        "conn",
    )
    conn: H1ServerConnection
    timed_out_event = ConnectionTimedOut

    def __init__(self, state: ServerState, scheme: str) -> None:
        super().__init__(state, scheme)
        self.conn = H1ServerConnection(state.h1_config, self.last_activity)
        # Exchanges in request order whose responses are not complete; the first may write.
        self._queue: deque[Exchange] = deque()
        self._close_when_done = False
        self._receiving: Exchange | None = None  # the exchange whose body is arriving
        # Body bytes fed to exchanges and not taken yet, per exchange and in all.
        self._counted: dict[Exchange, int] = {}
        self._held = 0
        # Trailers of a response ended before its turn, sent with its end.
        self._trailers_due: dict[Exchange, Fields] = {}
        # Closing while the peer still sends: the timer that ends it, and what was dropped.
        self._linger: asyncio.TimerHandle | None = None
        self._lingered = 0

    # -- ServerConnection ---------------------------------------------------------------

    def connected(self) -> None:
        if self.state.shutting_down:
            self.conn.start_graceful_shutdown()

    def live_exchanges(self) -> Iterable[Exchange]:
        return self._queue

    def forget_exchanges(self) -> None:
        self._queue.clear()
        self._receiving = None
        self._counted.clear()
        self._held = 0
        self._trailers_due.clear()

    def may_read(self) -> bool:
        return not self.conn.paused and not self._bodies_over_budget()

    def _bodies_over_budget(self) -> bool:
        """Exchanges hold more unread body than the budget, and the body arriving (if
        any) is read as it comes: reading more would only buffer more."""
        if self._held <= self.state.config.limits.max_buffered_body:
            return False
        receiving = self._receiving
        return receiving is None or receiving.on_body_complete is None

    def reading_resumed(self) -> None:
        # Requests held back in the core while it was paused come out now.
        self.state.loop.call_soon(self.data_received, None)

    def eof_received(self) -> bool | None:
        self.data_received(b"")
        # Keep the write side open until owed responses are out.
        return True if not self._closing else None

    # -- requests -----------------------------------------------------------------------

    def data_received(self, data: bytes | None) -> None:
        """Serve the requests of one read (``b""``: the peer's EOF; None: the requests the
        core held back while it was paused, see reading_resumed), write the answers, and
        go on parsing what the core held back while answers were owed.

        The three share this one method, and a request's exchange is made in the loop
        below rather than in a method of its own: two calls fewer per request."""
        if self._closing:
            if self._linger is not None and data:
                self._lingered += len(data)
                if self._lingered > LINGER_BYTES:
                    self._stop_lingering()
            return
        state = self.state
        conn = self.conn
        now = state.loop.time()
        if data is None:
            events = conn.resume(now)
        else:
            state.last_reader = self
            self.last_activity = now
            events = conn.receive_data(data, now)
        queue = self._queue
        while True:
            self._in_read = True
            try:
                for event in events:
                    if isinstance(event, RequestReceived):
                        upgrade = None
                    elif isinstance(event, UpgradeRequested):
                        upgrade = event.protocol  # answered with accept_tunnel, or refused
                        event = event.request
                    else:
                        if isinstance(event, BodyReceived):
                            self._on_body(event.data)
                        elif isinstance(event, BodyEnded):
                            self._on_body_end(event.trailers)
                        elif isinstance(event, ProtocolError):
                            log.debug(
                                "HTTP/1.1 protocol error from %s: %s",
                                self.client_host,
                                event.reason,
                            )
                            self._close_when_done = True
                            self._body_failed()
                        elif isinstance(event, ConnectionClosed):
                            self._close_when_done = True
                        continue
                    # A request: its exchange, next in line for an answer.
                    exchange = new_exchange(
                        self,
                        0,
                        event.method,
                        event.target,
                        event.headers,
                        event.host or b"",
                        "1.1" if event.http_version == b"1.1" else "1.0",
                        event.body,
                    )
                    if event.trailers is not None:
                        exchange.trailers = event.trailers
                    if upgrade is not None:
                        exchange.upgrade = upgrade
                    queue.append(exchange)
                    if event.body is None:
                        self._receiving = exchange
                    state.interface(exchange)
            finally:
                self._in_read = False
            # Input the core held back (max_pipelined answers were owed, or an upgrade
            # request's): once this read's answers are out, parse on unless answers are
            # still owed. (Asked after the answers, `paused` missed a read of more
            # requests than the bound, all answered inline: the rest waited for a read
            # that never came.)
            held_back = conn.held_back
            if self._held and self._bodies_over_budget():
                self.pause_reading()  # until the app takes what it holds (body_taken)
            self.flush(now)
            if self._closing or not held_back:
                break
            if conn.paused:
                # Answers are still owed: stop reading until they are out.
                self.pause_reading()
                break
            now = state.loop.time()
            events = conn.resume(now)

    def _on_body(self, data: bytes) -> None:
        exchange = self._receiving
        if exchange is None or exchange.response_state == DONE:
            return  # answered (its answer waits for its turn): nobody will read it
        self._counted[exchange] = self._counted.get(exchange, 0) + len(data)
        self._held += len(data)
        exchange.feed_body(data)

    def _on_body_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        exchange = self._receiving
        if exchange is not None:
            self._receiving = None
            exchange.end_body(trailers)

    def body_taken(self, exchange: Exchange, size: int) -> None:
        counted = self._counted.get(exchange)
        if counted is None:
            return  # a body that came whole with its head is not counted
        released = min(size, counted)
        if counted > released:
            self._counted[exchange] = counted - released
        else:
            del self._counted[exchange]
        self._held -= released
        if self._paused_reading:
            self.maybe_resume_reading()

    def _done(self, exchange: Exchange) -> None:
        """The exchange's answer is complete: what its body holds is released, and a body
        still arriving ends for its reader (the core drops the rest, or closes)."""
        counted = self._counted.pop(exchange, 0)
        if counted:
            self._held -= counted
            exchange.release_body()
            if self._paused_reading:
                self.maybe_resume_reading()
        if exchange is self._receiving:
            self._receiving = None
            exchange.on_body_complete = None
            exchange.end_body()

    def _body_failed(self) -> None:
        """Bad input (or a body over the limit) in the body being received: an unanswered
        request is answered by the core's error response, and the exchange is dropped;
        one whose answer has begun can only be cut off with the connection."""
        exchange = self._receiving
        if exchange is None:
            return
        self._receiving = None
        self._counted.pop(exchange, None)
        if exchange.response_state == PENDING or exchange.held is not None:
            queue = self._queue
            if queue and queue[-1] is exchange:
                queue.pop()
            exchange.lose()
        else:
            self.abort()

    # -- responses ----------------------------------------------------------------------

    def respond(self, exchange: Exchange, response: Response, body: bytes) -> None:
        # The core knows a HEAD request and sends no body for it: it gets the GET's.
        queue = self._queue
        if queue[0] is not exchange:
            exchange.held = response  # not its turn: sent when the ones before are done
            return
        state = self.state
        head = h1_head(response, state.server_name, state.clock.http_date, state.alt_svc)
        self.conn.send_response(head, response.body)
        queue.popleft()
        if self._receiving is not None or self._counted:
            self._done(exchange)
        if queue:
            self._advance()
        if not self._in_read:
            self.output_ready()

    def start(self, exchange: Exchange, response: Response) -> None:
        if self._queue[0] is not exchange:
            exchange.held = response
            exchange.backlog = []  # a streamed answer: its parts wait with its head
            return
        state = self.state
        self.conn.start_response(
            h1_head(response, state.server_name, state.clock.http_date, state.alt_svc)
        )
        self.output_ready()

    def _due(self, exchange: Exchange) -> bool:
        """Whether `exchange` may write now: it is the oldest, and its head has gone out."""
        return self._queue[0] is exchange and exchange.held is None

    def _keep(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        """Not its turn yet: the part waits, in order, until its head goes out (_advance)."""
        assert exchange.backlog is not None  # set by start() when it held the head
        exchange.backlog.append((data, end))

    def write(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        if not self._due(exchange):
            self._keep(exchange, data, end)
            return
        conn = self.conn
        write_now = len(data) >= FLUSH_NOW and not self._in_read
        if write_now:
            # What is queued before it goes first, not in the same write (this exchange is
            # the oldest, still queued: the flush writes and decides nothing; a flush
            # already scheduled then runs once more, finding nothing to do).
            self.flush()
        if data:
            conn.send_body(data)  # type: ignore[arg-type]
        if end:
            trailers = self._trailers_due.pop(exchange, None) if self._trailers_due else None
            if not self._end_response(exchange, trailers):
                return
            self._advance()
        if write_now:
            self.flush()
        else:
            self.output_ready()

    def end(self, exchange: Exchange, trailers: Fields | None) -> None:
        # Trailers go in a chunked body's trailer section (RFC 9110 section 6.5.1 lets a
        # server send them whether or not the client said TE: trailers); a body framed
        # by its content-length, or sent to HTTP/1.0, has no place for them: dropped.
        if not self._due(exchange):
            if trailers:
                self._trailers_due[exchange] = trailers
            self._keep(exchange, b"", True)
            return
        if self._end_response(exchange, trailers):
            self._advance()
        self.output_ready()

    def _end_response(self, exchange: Exchange, trailers: Fields | None) -> bool:
        """End the oldest exchange's streamed answer in the core; False when the answer
        cannot be ended honestly (the connection is cut)."""
        try:
            self.conn.end_response(trailers)
        except H1Error as exc:
            # Trailers the core refuses, or a body short of its content-length: the head
            # is out, so the only honest signal left is a cut connection.
            log.error("cannot end the response to %r: %s", exchange, exc.reason)
            self.abort()
            return False
        self._queue.popleft()
        self._done(exchange)
        return True

    def inform(self, exchange: Exchange, status: int, fields: Fields) -> None:
        if self._queue[0] is exchange:
            self.conn.send_response(serialize_head(status, list(fields)), b"")
            self.output_ready()

    def accept_tunnel(self, exchange: Exchange, fields: Fields) -> int:
        """101 Switching Protocols, then the transport goes to a `TunnelProtocol`: from
        here this adapter is out of the way (and the per-read path of HTTP/1.1 never
        looks for tunnels)."""
        transport = self.transport
        if self._queue[0] is not exchange or transport is None or self._closing:
            # Answers to pipelined requests before it are still owed: rare enough that
            # the handshake fails rather than waits.
            log.info("%s: upgrade behind unanswered requests; closing", self.client_host)
            self.abort()
            return 101
        assert exchange.upgrade is not None
        head = serialize_head(
            101, [(b"upgrade", exchange.upgrade), (b"connection", b"upgrade"), *fields]
        )
        conn = self.conn
        conn.send_response(head, b"")
        self.flush()  # only writes: the exchange is still in the queue (it must close after)
        self._queue.popleft()
        trailing, eof = conn.take_trailing_data()
        # This adapter lets go: no later flush, timeout or shutdown of it touches the
        # transport (nor counts it among the server's connections).
        self.transport = None
        self._closing = True
        self.state.connections.discard(self)
        exchange.body_complete = False  # the tunnel's bytes are the "body" from here
        tunnel = TunnelProtocol(self.state, self.scheme, exchange)
        tunnel.take_over(transport, self.client, self._paused_reading)
        tunnel.feed(trailing, eof)
        return 101

    def reset(self, exchange: Exchange) -> None:
        # The head may be half out: the only honest signal left is a cut connection.
        self.abort()

    def writable(self, exchange: Exchange) -> bool:
        return (
            not self._closing
            and not self._paused_writing
            and self._queue[0] is exchange
            and exchange.response_state == STARTED
            and exchange.held is None
        )

    def _advance(self) -> None:
        """The oldest exchange is done: send the held answers that are now due."""
        queue = self._queue
        while queue:
            exchange = queue[0]
            response = exchange.held
            if response is None:
                return
            exchange.held = None
            backlog = exchange.backlog
            if backlog is None:
                self.respond(exchange, response, response.body)
                return  # respond advanced the rest
            # A streamed answer: its head goes now, then what it wrote before its turn,
            # then the rest as its task writes it.
            exchange.backlog = None
            self.start(exchange, response)
            for data, end in backlog:
                self.write(exchange, data, end)  # the last may end it and advance
            exchange.wake()
            return

    # -- output -------------------------------------------------------------------------

    def flush(self, now: float | None = None) -> None:
        """Write what the core queued; close once nothing more is owed and closing is due.
        `now`: the time of the read whose answers go out (the last clock reading: the
        answers written in the read's own callback are dated by it)."""
        self._flush_scheduled = False
        transport = self.transport
        if transport is None:
            return
        data = self.conn.data_to_send()
        if data:
            self.last_activity = self.state.loop.time() if now is None else now
            transport.write(data)
        if self._queue:
            return  # answers still owed: nothing more to decide
        conn = self.conn
        if conn.must_close or self._close_when_done:
            if self._linger is not None:
                return  # lingering: its deadline or its octet bound closes
            if (conn.body_unfinished or conn.has_pending_input) and not self._closing:
                self._close_lingering()
            else:
                self.close_transport()
        elif self._paused_reading:
            self.maybe_resume_reading()

    def _close_lingering(self) -> None:
        """The last answer is out, but the peer is still sending (a body nobody read, or
        requests past the last one). Closing a socket with unread input makes the kernel
        reset the connection, and the reset can destroy the answer in the peer's receive
        buffer before the peer reads it. So, as nginx's lingering close does, read and drop
        what comes for a while (bounded in time and octets), then close."""
        self._closing = True
        self._linger = self.state.loop.call_later(LINGER_SECONDS, self._stop_lingering)
        if self._paused_reading:
            self._paused_reading = False
            if self.transport is not None:
                self.transport.resume_reading()

    def _stop_lingering(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.close_transport()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        super().connection_lost(exc)

    # -- server housekeeping ------------------------------------------------------------

    def is_idle(self) -> bool:
        return not self._queue and not self.conn.has_pending_input

    def shutdown(self) -> None:
        """Finish what was accepted (including a request still arriving), then close."""
        self.conn.start_graceful_shutdown()
        self.shutdown_tunnels()
        if not self._queue:
            self.flush()

    def evict(self) -> None:
        """Make room at the connection cap: this idle keep-alive connection is closed."""
        self._close_when_done = True
        self.flush()
