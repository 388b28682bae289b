"""The HTTP/2 adapter: the h2 core's events become exchanges, exchanges' answers become frames.

Each read is fed whole to the core; every request it completes is handed to the interface
at once (sync handlers answer inline, no task), and everything the core produced goes out
in one `transport.write` (a response that pushes many writes each 64 KiB as it is made).
Request bodies are buffered within a per-connection budget,
past which the peer's window stays shut: flow control is the back-pressure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

from h2books.http import Response
from h2books.protocol.h1.body import DISCARD_LIMIT
from h2books.protocol.h2 import ErrorCode, H2Connection
from h2books.protocol.h2 import events as ev
from h2books.server.connection import WRITE_DURING_READ, ServerConnection
from h2books.server.exchange import DONE, Exchange, Fields, new_exchange
from h2books.server.responses import BODY_TOO_LARGE, h2_fields
from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")

# Queue this much of a response body per stream before waiting for the peer's window.
_STREAM_HIGH_WATER = 256 * 1024


class H2ServerProtocol(ServerConnection):
    conn: H2Connection
    timed_out_event = ev.ConnectionTimedOut
    __slots__ = (
        "_body_bytes",
        "_deferred",
        "_exchanges",
        "_held",
        "_tls",
        "conn",
    )

    def __init__(self, state: ServerState, scheme: str) -> None:
        super().__init__(state, scheme)
        self.conn = H2Connection(state.h2_config)
        self._exchanges: dict[int, Exchange] = {}  # stream id -> exchange not yet finished
        # Both made with the first body held back: most connections never need them.
        self._held: dict[int, int] = _NO_COUNTS  # stream id -> body bytes counted in the budget
        self._body_bytes = 0  # their sum: request body bytes held for the layer above
        self._deferred: dict[int, int] = _NO_COUNTS  # stream id -> window credit held back
        self._tls = scheme == "https"

    # -- ServerConnection ---------------------------------------------------------------

    def connected(self) -> None:
        self.conn.initiate(self.state.loop.time())
        if self.state.shutting_down:
            self.shutdown()
        self.flush()

    def live_exchanges(self) -> Iterable[Exchange]:
        return self._exchanges.values()

    def forget_exchanges(self) -> None:
        self._exchanges.clear()
        self._held = self._deferred = _NO_COUNTS
        self._body_bytes = 0

    def eof_received(self) -> bool | None:
        # A half-closed peer can still read our responses; the core decides when we are done.
        return True if self._exchanges else None

    def write_pending(self) -> bool:
        transport = self.transport
        if transport is None:
            return False
        # Big DATA payloads come as views of the response body: no copy in the core.
        buffers = self.conn.buffers_to_send()
        if buffers:
            self.last_activity = self.state.loop.time()
            if len(buffers) == 1:
                transport.write(buffers[0])
            elif self._tls:
                # A TLS transport encrypts each piece it is given as TLS records of its
                # own: a 9-octet frame header would cost a record (and the peer a read)
                # per DATA frame. One copy makes full 16 KiB records, and costs less.
                transport.write(b"".join(buffers))
            else:
                transport.writelines(buffers)  # cleartext: one writev, no copy
        return True

    def data_received(self, data: bytes) -> None:
        state = self.state
        state.previous_reader = state.last_reader
        state.last_reader = self
        now = state.loop.time()
        self.last_activity = now
        self._in_read = True
        exchanges = self._exchanges
        interface = state.interface
        request_received = ev.RequestReceived
        # The most frequent events first: one isinstance each, and mypy narrows the type.
        try:
            for event in self.conn.receive_data(data, now):
                if isinstance(event, request_received):
                    stream_id = event.stream_id
                    whole = event.end_stream
                    exchange = new_exchange(
                        self,
                        stream_id,
                        event.method,
                        event.path,
                        event.headers,
                        event.authority,
                        "2",
                        b"" if whole else None,
                    )
                    if whole:
                        interface(exchange)
                        if exchange.response_state != DONE and not exchange.gone:
                            exchanges[stream_id] = exchange  # still to answer: findable by id
                    else:
                        exchanges[stream_id] = exchange
                        if event.protocol is not None:  # RFC 8441: a WebSocket
                            exchange.upgrade = event.protocol
                            interface(exchange)
                        elif self._body_wanted(exchange):
                            interface(exchange)
                elif isinstance(event, ev.DataReceived):
                    self._on_data(event)
                elif isinstance(event, ev.StreamReset):
                    self._lose(event.stream_id)
                elif isinstance(event, ev.WindowUpdated):
                    self._wake(event.stream_id)
                elif isinstance(event, ev.TrailersReceived):
                    ended = exchanges.get(event.stream_id)
                    if ended is not None:
                        ended.end_body(event.headers)
                elif isinstance(event, ev.ConnectionTerminated):
                    self._closing = True
                elif isinstance(event, ev.RemoteSettingsChanged):
                    # A larger SETTINGS_INITIAL_WINDOW_SIZE opens every stream's window.
                    self._wake(0)
                # GoAwayReceived: in-flight streams still finish; the peer opens no new ones.
        finally:
            self._in_read = False
        self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        if not self.write_pending():
            return
        # After a final GOAWAY (ours on shutdown, or the peer's) the core reports `closed`
        # once its last stream is done.
        if self._closing or self.conn.closed:
            self.close_transport()

    # -- requests -----------------------------------------------------------------------

    def _body_wanted(self, exchange: Exchange) -> bool:
        """A request whose body follows: False if it was refused at once (413)."""
        headers = exchange.headers
        if _expects_continue(headers):
            # RFC 9110 §10.1.1: say at once whether the body is wanted.
            if _declared_length(headers) > self.state.config.limits.max_body_size:
                self._refuse_body(exchange)
                return False
            self.conn.send_headers(exchange.stream_id, _CONTINUE)
        return True

    def _on_data(self, event: ev.DataReceived) -> None:
        stream_id = event.stream_id
        exchange = self._exchanges.get(stream_id)
        received = event.flow_controlled_length
        if exchange is None or exchange.body_complete:
            # The answer went out before the body ended: the bytes are not wanted.
            if received:
                self.conn.acknowledge_received_data(stream_id, received)
            return
        data = event.data
        if (
            exchange.body_size + len(data) > self.state.config.limits.max_body_size
            and exchange.upgrade is None  # a tunnel's bytes are no body: the window bounds them
        ):
            self._refuse_body(exchange)
            return
        if exchange.on_body_complete is not None:
            # Wanted whole: held here until the last byte, counted in the connection's budget.
            if data:
                held = self._held
                if held is _NO_COUNTS:
                    held = self._held = {}
                held[stream_id] = held.get(stream_id, 0) + len(data)
                self._body_bytes += len(data)
            if received:
                self._credit(stream_id, received)
        elif received > len(data):
            # Read as it comes: the window reopens as the reader takes the bytes (see
            # body_taken); padding is nobody's to read and is credited now.
            self.conn.acknowledge_received_data(stream_id, received - len(data))
        exchange.feed_body(data)
        if event.end_stream:
            exchange.end_body()
            if exchange.response_state == DONE:  # a tunnel that we had ended first
                self._finish(exchange)

    def _refuse_body(self, exchange: Exchange) -> None:
        """A body over --max-body-size: 413, and the stream ends before the rest arrives;
        the layer above never sees the bytes past the limit."""
        exchange.on_body_complete = None
        exchange.body_complete = True
        exchange.respond(BODY_TOO_LARGE)
        self.conn.reset_stream(exchange.stream_id, ErrorCode.NO_ERROR)
        self._finish(exchange)
        exchange.lose()

    def _credit(self, stream_id: int, size: int) -> None:
        """Reopen the peer's window for body bytes we hold, within the connection's budget.

        Past `max_buffered_body` the credit is deferred (the peer's window stays shut, so it
        cannot send more) except for the oldest body being held, which can always finish:
        the budget bounds memory without ever deadlocking every upload at once.
        """
        if self._body_bytes <= self.state.config.limits.max_buffered_body or stream_id == next(
            iter(self._held)
        ):
            self.conn.acknowledge_received_data(stream_id, size)
        else:
            deferred = self._deferred
            if deferred is _NO_COUNTS:
                deferred = self._deferred = {}
            deferred[stream_id] = deferred.get(stream_id, 0) + size

    def body_taken(self, exchange: Exchange, size: int) -> None:
        """The layer above took `size` body bytes: what the budget counted is released (and
        other streams' deferred credit may go out); bytes read as they came get their
        window back now."""
        stream_id = exchange.stream_id
        counted = self._held.get(stream_id, 0)
        released = min(size, counted)
        if released:
            self._uncount(stream_id, released)
            self._give_deferred_credit()
        if size > released:
            self.conn.acknowledge_received_data(stream_id, size - released)
        self.output_ready()

    def _uncount(self, stream_id: int, size: int) -> None:
        left = self._held[stream_id] - size
        if left:
            self._held[stream_id] = left
        else:
            del self._held[stream_id]
        self._body_bytes -= size

    def _give_deferred_credit(self) -> None:
        deferred = self._deferred
        if not deferred:
            return
        # The oldest body must always be able to finish (no upload deadlock).
        oldest = next(iter(self._held), None)
        if oldest is not None and oldest in deferred:
            self.conn.acknowledge_received_data(oldest, deferred.pop(oldest))
        limit = self.state.config.limits.max_buffered_body
        while deferred and self._body_bytes <= limit:
            waiting_id, size = deferred.popitem()
            self.conn.acknowledge_received_data(waiting_id, size)

    def _finish(self, exchange: Exchange) -> None:
        """The exchange is over: forget it and what its body held."""
        stream_id = exchange.stream_id
        if self._exchanges.pop(stream_id, None) is None:
            return
        # An ended or reset stream's unacknowledged bytes go back to the connection
        # window inside the core; only other streams' deferred credit is owed.
        if self._deferred:
            self._deferred.pop(stream_id, None)
        self._body_bytes -= self._held.pop(stream_id, 0)
        exchange.release_body()
        if self._deferred:
            self._give_deferred_credit()

    def _response_done(self, exchange: Exchange) -> None:
        if not exchange.body_complete:
            if exchange.upgrade is not None and exchange.status == 200:
                return  # a tunnel ends both ways: the peer's END_STREAM follows ours
            # The answer is complete before the request is. A short declared rest is
            # let in and dropped (credited as it comes, see _on_data): clients such as
            # httpx and curl take the RST_STREAM NO_ERROR that RFC 9113 §8.1 allows as a
            # failed upload. Anything longer, or of unknown length, is stopped with it.
            rest = _declared_length(exchange.headers) - exchange.body_size
            if not 0 <= rest <= DISCARD_LIMIT:
                self.conn.reset_stream(exchange.stream_id, ErrorCode.NO_ERROR)
            exchange.on_body_complete = None
            exchange.end_body()  # a reader sees the body end here
        self._finish(exchange)

    def _lose(self, stream_id: int) -> None:
        # Work for a cancelled stream is never done: drop its body, cancel its work.
        exchange = self._exchanges.get(stream_id)
        if exchange is not None:
            self._finish(exchange)
            exchange.lose()

    # -- responses ----------------------------------------------------------------------

    def respond(self, exchange: Exchange, response: Response, body: bytes) -> None:
        state = self.state
        fields = h2_fields(response, state.server_name, state.clock.http_date, state.alt_svc)
        stream_id = exchange.stream_id
        queued = self.conn.send_response(stream_id, response.status, fields, body, response)
        if exchange.body_size or not exchange.body_complete or self._deferred:
            self._response_done(exchange)
        elif self._exchanges:
            self._exchanges.pop(stream_id, None)  # _finish, for the common case
        if not self._in_read:
            self.output_ready()
        elif (
            state.previous_reader is self  # no other connection is keeping the server busy
            # (_response_done/_finish may add a 13-octet reset or credit frames, WINDOW_UPDATE)
            and queued >= WRITE_DURING_READ
        ):
            self.write_pending()

    def start(self, exchange: Exchange, response: Response) -> None:
        state = self.state
        fields = h2_fields(response, state.server_name, state.clock.http_date, state.alt_svc)
        self.conn.send_headers(exchange.stream_id, (*_status(response.status), *fields))
        self.output_ready()

    def write(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        self.conn.send_data(exchange.stream_id, data, end_stream=end)  # type: ignore[arg-type]
        if end:
            self._response_done(exchange)
        self.body_queued(len(data))

    def end(self, exchange: Exchange, trailers: Fields | None) -> None:
        if trailers:
            self.conn.send_trailers(exchange.stream_id, trailers)
        else:
            self.conn.send_data(exchange.stream_id, b"", end_stream=True)
        self._response_done(exchange)
        self.output_ready()

    def accept_tunnel(self, exchange: Exchange, fields: Fields) -> int:
        """RFC 8441 §5: a 2xx answer to the extended CONNECT opens the tunnel."""
        self.conn.send_headers(exchange.stream_id, (_STATUS_200, *fields))
        self.output_ready()
        return 200

    def inform(self, exchange: Exchange, status: int, fields: Fields) -> None:
        self.conn.send_headers(exchange.stream_id, (*_status(status), *fields))
        self.output_ready()

    def push(self, exchange: Exchange, path: bytes, fields: Fields) -> bool:
        """Promise a GET for `path` on the exchange's stream, then serve it as a request of
        its own: a synthetic exchange goes to the same interface, whose answer goes out on
        the promised stream. False when the core's bounds refuse it (see protocol/h2/push.py)
        or the request named no authority. A sync handler answers inline, so the pushed
        stream is usually closed again before this returns: the client's concurrency limit
        then bounds what waits on flow control, not how much is pushed."""
        authority = exchange.authority
        if not authority or not self.can_push:
            return False
        # The pushed request names its authority in :authority alone: a Host field could
        # disagree with it, and the pushed exchange's headers would then carry an unchecked
        # one (the core puts a request's checked Host first; a push is not parsed).
        fields = [field for field in fields if field[0] != b"host"]
        promised = self.conn.push_promise(
            exchange.stream_id,
            (
                (b":method", b"GET"),
                (b":scheme", self.scheme.encode("ascii")),
                (b":authority", authority),
                (b":path", path),
                *fields,
            ),
        )
        if not promised:
            return False
        pushed = new_exchange(self, promised, b"GET", path, fields, authority, "2", b"")
        self.state.interface(pushed)
        if pushed.response_state != DONE and not pushed.gone:
            self._exchanges[promised] = pushed
        if not self._in_read:
            self.output_ready()
        elif self.conn.queued_output_size >= WRITE_DURING_READ:
            # A response that pushes many (the index pushes every book) would otherwise
            # hold all of them until the read's batch ends.
            self.write_pending()
        return True

    @property
    def can_push(self) -> bool:
        # A transport that has closed under a burst of pushes stops the burst: what follows
        # would only be thrown away. (A cleartext transport closes on the failed write
        # itself; a TLS one only on the next loop turn, so there the burst runs to the end
        # of the targets the response names.)
        transport = self.transport
        return (
            not self._closing
            and transport is not None
            and not transport.is_closing()
            and self.conn.can_push
        )

    def reset(self, exchange: Exchange) -> None:
        if not self._closing:
            # An abandoned tunnel is a CANCEL (RFC 8441 §5.1); a failed answer, an error.
            code = ErrorCode.INTERNAL_ERROR if exchange.upgrade is None else ErrorCode.CANCEL
            self.conn.reset_stream(exchange.stream_id, code)
            self.output_ready()
        self._finish(exchange)
        exchange.lose()

    def writable(self, exchange: Exchange) -> bool:
        return (
            not self._closing
            and not self._paused_writing
            and self.conn.pending_send_bytes(exchange.stream_id) <= _STREAM_HIGH_WATER
        )

    def _wake(self, stream_id: int) -> None:
        if stream_id == 0:
            for live in self._exchanges.values():
                live.wake()
            return
        exchange = self._exchanges.get(stream_id)
        if exchange is not None:
            exchange.wake()

    # -- server housekeeping ------------------------------------------------------------

    def is_idle(self) -> bool:
        conn = self.conn
        # A header block still arriving is a request on its way: not idle, not evictable.
        return not self._exchanges and conn.open_stream_count == 0 and not conn.has_partial_request

    def shutdown(self) -> None:
        """Graceful: tell the peer (two-stage GOAWAY), finish what was accepted, then close.
        The final GOAWAY goes out when the peer answers our PING or, at the latest, at the
        core's grace deadline (`check_timeouts`)."""
        if not self._closing:
            # WebSockets' close frames go out before the GOAWAY (a peer may stop
            # reading DATA once it has one).
            self.shutdown_tunnels()
            self.conn.start_graceful_shutdown(self.state.loop.time())
            self.output_ready()

    def evict(self) -> None:
        """Make room at the connection cap: this idle connection gets GOAWAY and is closed."""
        if not self._closing:
            self.conn.close(ErrorCode.NO_ERROR, b"server at its connection limit")
            self.flush()


_CONTINUE = ((b":status", b"100"),)
_STATUS_200 = (b":status", b"200")


# Shared and always empty: stands for the counts until a connection needs its own.
_NO_COUNTS: Final[dict[int, int]] = {}


def _expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"expect":
            return value.lower() == b"100-continue"
    return False


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # the core has validated it
    return -1  # not declared


def _status(status: int) -> tuple[tuple[bytes, bytes]]:
    return ((b":status", str(status).encode("ascii")),)
