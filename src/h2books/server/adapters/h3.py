"""The HTTP/3 adapter: aioquic's QUIC and HTTP/3 events become exchanges, answers become frames.

One `H3ServerProtocol` per QUIC connection. It is a `ServerConnection` like the HTTP/1.1
and HTTP/2 adapters, except that it owns no transport: the endpoint (`server/quic.py`)
reads the UDP socket and hands it the datagrams whose connection id it issued, and it
sends through the endpoint. aioquic is the core: `QuicConnection` (packets, TLS 1.3,
loss recovery, flow control) under `H3Connection` (frames, QPACK).

Time: QUIC's timers (loss detection, ACK delay, pacing, idle) need sub-millisecond
precision, which the server's once-a-second sweep cannot give. Each connection keeps one
loop timer armed at `quic.get_timer()`, re-armed after every read, write and expiry only
when the deadline moved, and feeds aioquic `time.monotonic()` (`quic_timer.py`).

Requests at once: `--max-concurrent-streams`, counted as HTTP/2 counts it; a request's
stream credit comes back when its answer is done, not one round trip later (`h3_credit.py`).

Request bodies: aioquic gives flow-control credit back as data arrives (it doubles a
stream's window once half is used), so the window is no back-pressure here. Bodies are
bounded instead by `max_body_size` per request (413, then STOP_SENDING) and by
`max_buffered_body` for the bodies one connection holds whole for its handlers (503).
Nor does the window bound what aioquic buffers while a frame is incomplete (a request
head, trailers, a control stream's SETTINGS) or while a stream waits on QPACK: each
stream's buffer is checked after every read (`_check_buffered`), and past
`max_header_list_size` (+ a frame header) a request stream is dropped and a critical
stream closes the connection (H3_EXCESSIVE_LOAD).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import ErrorCode as H3Error
from aioquic.h3.connection import FrameType, H3Connection, HeadersState, encode_frame
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic import events as quic_events
from aioquic.quic.connection import NetworkAddress, QuicConnection

from h2books.http import Response
from h2books.protocol.h2.validation import MalformedHeaders, validate_request
from h2books.quic_timer import QuicTimer
from h2books.server.adapters.h3_credit import RequestStreamCredit
from h2books.server.connection import ServerConnection
from h2books.server.exchange import DONE, Exchange, Fields, new_exchange
from h2books.server.responses import BODY_TOO_LARGE, error_response, h2_fields
from h2books.server.state import ServerState

if TYPE_CHECKING:
    from h2books.server.quic import QuicEndpoint

log = logging.getLogger("h2books.server")

# Queue this much of a response body per stream before waiting for the peer (its window,
# the congestion window): the same bound as HTTP/2's.
_STREAM_HIGH_WATER = 256 * 1024
# A frame header (type and length, two varints) beyond a full field section.
_FRAME_HEADER_SLACK = 16
BODY_BUDGET_FULL = error_response(503, "too many request bodies in progress on this connection")


class H3ServerProtocol(ServerConnection):
    conn: QuicConnection
    __slots__ = (
        "_blocked",
        "_body_bytes",
        "_closing",
        "_credit",
        "_dropping",
        "_ended",
        "_exchanges",
        "_goaway_id",
        "_heads_arriving",
        "_held",
        "_timer",
        "conn",
        "connection_ids",
        "endpoint",
        "h3",
        "handshake_done",
    )

    def __init__(
        self, state: ServerState, endpoint: QuicEndpoint, quic: QuicConnection, addr: NetworkAddress
    ) -> None:
        super().__init__(state, "https")
        self.conn = quic
        self.endpoint = endpoint
        self.h3: H3Connection | None = None  # once ALPN agreed on h3
        self.handshake_done = False
        self.client = (str(addr[0]), int(addr[1]))
        self.client_host = self.client[0]
        if endpoint.transport is not None:
            local = endpoint.transport.get_extra_info("sockname")
            if isinstance(local, tuple) and len(local) >= 2:
                self.server = (str(local[0]), int(local[1]))
        self._exchanges: dict[int, Exchange] = {}  # stream id -> exchange not yet finished
        # Request streams with bytes in and no complete head yet -> when the first byte
        # came (the slow-head rule; is_idle and GOAWAY count them too).
        self._heads_arriving: dict[int, float] = {}
        # Request streams whose input we stopped reading: what still arrives is dropped
        # before aioquic buffers it, until the peer ends or resets the stream. Bounded by
        # the streams open at once (aioquic grants new ones only as these end).
        self._dropping: set[int] = set()
        self.connection_ids: set[bytes] = set()  # ours in use, for the endpoint's routing
        self._blocked: set[Exchange] = set()  # responses waiting for room to send
        self._held: dict[int, int] = {}  # stream id -> body bytes counted in the budget
        self._body_bytes = 0  # their sum: request body bytes held whole for the layer above
        self._goaway_id: int | None = None  # after our GOAWAY: no request from this id on
        self._ended = False
        self._closing = False  # CONNECTION_CLOSE queued: no more input is interpreted
        self._timer = QuicTimer(state.loop, quic, self._expire)
        self._credit = RequestStreamCredit.install(quic, state.config.limits.max_concurrent_streams)
        state.connections.add(self)

    # -- datagrams in, events out ------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        if self._ended:
            return
        state = self.state
        state.last_reader = self
        now = self._timer.now()
        self.last_activity = now
        self._in_read = True
        try:
            self.conn.receive_datagram(data, addr, now)
            self._handle_events()
        finally:
            self._in_read = False
        self.flush()

    def _handle_events(self) -> None:
        quic = self.conn
        event = quic.next_event()
        while event is not None:
            kind = type(event)
            if kind is quic_events.StreamDataReceived:
                self._on_stream_data(event)  # type: ignore[arg-type]
            elif kind is quic_events.StreamReset or kind is quic_events.StopSendingReceived:
                stream_id = event.stream_id  # type: ignore[attr-defined]
                if self.h3 is not None:
                    self.h3.handle_event(event)
                if kind is quic_events.StreamReset:
                    self._heads_arriving.pop(stream_id, None)
                    if stream_id in self._dropping:
                        self._stop_dropping(stream_id)
                self._lose(stream_id, kind is quic_events.StreamReset)
            elif kind is quic_events.ProtocolNegotiated:
                self.h3 = H3Connection(quic)
            elif kind is quic_events.HandshakeCompleted:
                self.handshake_done = True
                if self.state.shutting_down:
                    self.shutdown()
            elif kind is quic_events.ConnectionIdIssued:
                self.endpoint.issued(event.connection_id, self)  # type: ignore[attr-defined]
            elif kind is quic_events.ConnectionIdRetired:
                self.endpoint.retired(event.connection_id)  # type: ignore[attr-defined]
            elif kind is quic_events.ConnectionTerminated:
                self._terminated()
                return
            event = quic.next_event()

    def _on_stream_data(self, event: quic_events.StreamDataReceived) -> None:
        h3 = self.h3
        if h3 is None or self._closing:
            return
        stream_id = event.stream_id
        if stream_id in self._dropping:
            if event.end_stream:
                self._stop_dropping(stream_id)
            return
        for h3_event in h3.handle_event(event):
            self._on_h3_event(h3_event)
        self._check_buffered(h3, stream_id)

    def _check_buffered(self, h3: H3Connection, stream_id: int) -> None:
        """Bound what aioquic holds for this stream (its private `_stream` table, pinned:
        aioquic 1.x): an incomplete HEADERS frame (a head, trailers) or SETTINGS, or
        everything behind a header block waiting on QPACK. Flow control does not bound
        it (module docstring), so the field-section limit does, as HTTP/2's does."""
        stream = h3._stream.get(stream_id)
        if stream is None:
            self._heads_arriving.pop(stream_id, None)
            return
        if len(stream.buffer) > self.state.config.limits.max_header_list_size + (
            _FRAME_HEADER_SLACK
        ):
            if stream_id & 3 == 0:
                self._drop_request_stream(h3, stream_id, H3Error.H3_EXCESSIVE_LOAD)
            else:  # the peer's control or QPACK stream: critical, it cannot be reset
                stream.buffer = b""
                self._closing = True
                self._close_quic(H3Error.H3_EXCESSIVE_LOAD, "frame too large")
            return
        if stream_id & 3 == 0:
            if stream.headers_recv_state is HeadersState.INITIAL and not stream.receiving_ended:
                self._heads_arriving.setdefault(stream_id, self.last_activity)
            else:
                self._heads_arriving.pop(stream_id, None)

    def _drop_request_stream(self, h3: H3Connection, stream_id: int, code: int) -> None:
        """A request stream over the buffer bound or too slow: its input is stopped and
        dropped from here on; the request is reset unless its answer is complete."""
        stream = h3._stream.get(stream_id)
        if stream is None:
            return
        self._heads_arriving.pop(stream_id, None)
        self._dropping.add(stream_id)
        self._stop_reading(stream_id)
        decoder_stream = h3._local_decoder_stream_id
        if stream.blocked and decoder_stream is not None:
            # A header block we will never decode: tell the peer's encoder (RFC 9204
            # §4.4.2), as aioquic does when a peer resets such a stream.
            self.conn.send_stream_data(decoder_stream, h3._decoder.cancel_stream(stream_id))
        stream.blocked = False
        stream.blocked_frame_size = stream.blocked_frame_type = None
        stream.buffer = b""
        exchange = self._exchanges.get(stream_id)
        if stream.headers_recv_state is HeadersState.INITIAL or exchange is not None:
            self._reset_sending(stream_id, code)
            stream.sending_ended = True
        if exchange is not None:  # trailers too large: the request is lost
            self._finish(exchange)
            exchange.lose()
        self._credit.release(stream_id)  # whatever it carried: its slot is free again
        self.output_ready()

    def _stop_dropping(self, stream_id: int) -> None:
        """The peer ended or reset a stream whose input we were dropping: aioquic's
        record of it may go once our side is done too."""
        self._dropping.discard(stream_id)
        streams = {} if self.h3 is None else self.h3._stream
        stream = streams.get(stream_id)
        if stream is not None:
            stream.receiving_ended = True
            if stream.is_ended():
                del streams[stream_id]

    def _on_h3_event(self, event: H3Event) -> None:
        if isinstance(event, DataReceived):
            self._on_data(event.stream_id, event.data, event.stream_ended)
        elif isinstance(event, HeadersReceived):
            exchange = self._exchanges.get(event.stream_id)
            if exchange is None:
                if not self._credit.released(event.stream_id):  # else: its request is over
                    self._on_request(event)
            elif not exchange.body_complete:  # trailers
                exchange.end_body(list(event.headers))
                if exchange.response_state == DONE:
                    self._finish(exchange)

    # -- requests --------------------------------------------------------------------------

    def _on_request(self, event: HeadersReceived) -> None:
        stream_id = event.stream_id
        self._heads_arriving.pop(stream_id, None)
        if self._goaway_id is not None and stream_id >= self._goaway_id:
            # RFC 9114 §5.2: past our GOAWAY, never processed; the client may retry it.
            self._abandon_stream(stream_id, H3Error.H3_REQUEST_REJECTED)
            return
        # aioquic checked the field section's syntax; the request rules are HTTP/2's, the
        # same in RFC 9114 §4.2-4.3, so the h2 core's one implementation applies them: one
        # Host field, equal to :authority; cookie crumbs joined into one field (§4.2.1);
        # a Host field first, as every multiplexed request's fields are handed on.
        try:
            method, _, authority, path, fields, _, _ = validate_request(event.headers)
        except MalformedHeaders as exc:
            log.debug("%s: malformed request on stream %d: %s", self.client_host, stream_id, exc)
            self._abandon_stream(stream_id, H3Error.H3_MESSAGE_ERROR)
            return
        if method == b"CONNECT":  # CONNECT (and RFC 9220 WebSockets): not served over HTTP/3
            self._abandon_stream(stream_id, H3Error.H3_REQUEST_REJECTED)
            return
        whole = event.stream_ended
        exchange = new_exchange(
            self, stream_id, method, path, fields, authority, "3", b"" if whole else None
        )
        self._exchanges[stream_id] = exchange
        self.state.interface(exchange)
        if whole and (exchange.response_state == DONE or exchange.gone):
            self._finish(exchange)

    def _on_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        exchange = self._exchanges.get(stream_id)
        if exchange is None or exchange.body_complete:
            return  # the answer went out before the body ended: not wanted
        limits = self.state.config.limits
        if exchange.body_size + len(data) > limits.max_body_size:
            self._refuse_body(exchange, BODY_TOO_LARGE)
            return
        if exchange.on_body_complete is not None and data:
            # Wanted whole: held until the last byte, within the connection's budget (the
            # oldest body may always finish, so uploads never all wait on each other).
            if self._body_bytes + len(data) > limits.max_buffered_body and (
                exchange is not next(iter(self._exchanges.values()))
            ):
                self._refuse_body(exchange, BODY_BUDGET_FULL)
                return
            self._body_bytes += len(data)
            self._held[stream_id] = self._held.get(stream_id, 0) + len(data)
        exchange.feed_body(data)
        if ended:
            exchange.end_body()
            if exchange.response_state == DONE:
                self._finish(exchange)

    def _refuse_body(self, exchange: Exchange, response: Response) -> None:
        """Answer now and stop the rest of the body (RFC 9114 §4.1.2); the layer above
        never sees the bytes past the limit."""
        exchange.on_body_complete = None
        exchange.body_complete = True
        exchange.respond(response)
        self._stop_reading(exchange.stream_id)
        self._finish(exchange)
        exchange.lose()

    def body_taken(self, exchange: Exchange, size: int) -> None:
        # Flow-control credit is aioquic's (given on receipt); only the budget is ours.
        self._uncount(exchange.stream_id, size)

    def _uncount(self, stream_id: int, size: int) -> None:
        counted = self._held.get(stream_id, 0)
        released = min(size, counted)
        if released:
            if counted == released:
                del self._held[stream_id]
            else:
                self._held[stream_id] = counted - released
            self._body_bytes -= released

    def _finish(self, exchange: Exchange) -> None:
        if self._exchanges.pop(exchange.stream_id, None) is None:
            return
        self._credit.release(exchange.stream_id)  # as HTTP/2 frees a slot (h3_credit.py)
        if self._held:
            self._uncount(exchange.stream_id, exchange.body_size)
        exchange.release_body()
        self._blocked.discard(exchange)

    def _response_done(self, exchange: Exchange) -> None:
        if not exchange.body_complete:
            # Complete before the request: the rest of its body is not wanted.
            self._stop_reading(exchange.stream_id)
            exchange.on_body_complete = None
            exchange.end_body()
        self._finish(exchange)

    def _lose(self, stream_id: int, peer_reset: bool) -> None:
        exchange = self._exchanges.get(stream_id)
        if exchange is None:
            if peer_reset and stream_id & 3 == 0:
                self._credit.release(stream_id)  # a request reset before its head
            return
        if peer_reset and exchange.response_state != DONE:
            # The request is cancelled (RFC 9114 §4.1.1): our half ends too.
            self._reset_sending(stream_id, H3Error.H3_REQUEST_CANCELLED)
        self._finish(exchange)
        exchange.lose()

    # -- responses --------------------------------------------------------------------------

    def respond(self, exchange: Exchange, response: Response, body: bytes) -> None:
        h3 = self.h3
        assert h3 is not None
        state = self.state
        fields = h2_fields(response, state.server_name, state.clock.http_date, state.alt_svc)
        stream_id = exchange.stream_id
        h3.send_headers(stream_id, [_status(response.status), *fields], end_stream=not body)
        if body:
            h3.send_data(stream_id, body, end_stream=True)
        self._response_done(exchange)
        if not self._in_read:
            self.output_ready()

    def start(self, exchange: Exchange, response: Response) -> None:
        assert self.h3 is not None
        state = self.state
        fields = h2_fields(response, state.server_name, state.clock.http_date, state.alt_svc)
        self.h3.send_headers(exchange.stream_id, [_status(response.status), *fields])
        self.output_ready()

    def write(self, exchange: Exchange, data: bytes | memoryview, end: bool) -> None:
        assert self.h3 is not None
        self.h3.send_data(exchange.stream_id, bytes(data), end_stream=end)
        if end:
            self._response_done(exchange)
        self.body_queued(len(data))

    def end(self, exchange: Exchange, trailers: Fields | None) -> None:
        assert self.h3 is not None
        if trailers:
            self.h3.send_headers(exchange.stream_id, list(trailers), end_stream=True)
        else:
            self.h3.send_data(exchange.stream_id, b"", end_stream=True)
        self._response_done(exchange)
        self.output_ready()

    def inform(self, exchange: Exchange, status: int, fields: Fields) -> None:
        assert self.h3 is not None
        self.h3.send_headers(exchange.stream_id, [_status(status), *fields])
        self.output_ready()

    def reset(self, exchange: Exchange) -> None:
        stream_id = exchange.stream_id
        if not exchange.body_complete:
            self._stop_reading(stream_id)
        self._reset_sending(stream_id, H3Error.H3_INTERNAL_ERROR)
        self._finish(exchange)
        exchange.lose()
        self.output_ready()

    def writable(self, exchange: Exchange) -> bool:
        if self._ended or _unsent_bytes(self.conn, exchange.stream_id) > _STREAM_HIGH_WATER:
            self._blocked.add(exchange)
            return False
        return True

    def _abandon_stream(self, stream_id: int, code: int) -> None:
        """A request refused on its head: reset, and what else it carries is dropped.
        aioquic's record of the stream (its private `_stream`) goes once both halves are
        done: our reset ends the sending half, which aioquic cannot see (it only sees
        its own sends), and when the head came with the stream's end (any GET) nothing
        more arrives to end the dropping: both would be held for the connection's life."""
        self._credit.release(stream_id)  # refused: its slot is free again
        self._reset_sending(stream_id, code)
        streams = {} if self.h3 is None else self.h3._stream
        stream = streams.get(stream_id)
        if stream is not None:
            stream.sending_ended = True
            if stream.receiving_ended:  # the request ended with its head
                if stream.is_ended():
                    del streams[stream_id]
                return
        self._dropping.add(stream_id)  # what else it carries is dropped, as it arrives
        self._stop_reading(stream_id)

    def _stop_reading(self, stream_id: int) -> None:
        with contextlib.suppress(ValueError, AssertionError):  # gone on aioquic's side
            self.conn.stop_stream(stream_id, H3Error.H3_NO_ERROR)

    def _reset_sending(self, stream_id: int, code: int) -> None:
        with contextlib.suppress(ValueError, AssertionError):
            self.conn.reset_stream(stream_id, code)

    # -- output and time ------------------------------------------------------------------

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._ended:
            return
        now = self._timer.now()
        send = self.endpoint.send
        datagrams = self.conn.datagrams_to_send(now)
        for data, addr in datagrams:
            send(data, addr)
        if datagrams:
            self.last_activity = now
        if self._goaway_id is not None and not self._exchanges and _all_acknowledged(self.conn):
            # After GOAWAY, once the last answers are acknowledged: CONNECTION_CLOSE (sent
            # earlier, aioquic would send it instead of the answers' last bytes).
            self.conn.close(error_code=H3Error.H3_NO_ERROR, reason_phrase="shutdown")
            for data, addr in self.conn.datagrams_to_send(now):
                send(data, addr)
        self._timer.arm()
        if self._blocked:
            # ACKs and window updates made room: responses waiting for it go on.
            for exchange in list(self._blocked):
                if (
                    exchange.gone
                    or _unsent_bytes(self.conn, exchange.stream_id) <= _STREAM_HIGH_WATER
                ):
                    self._blocked.discard(exchange)
                    exchange.wake()

    def _expire(self, now: float) -> None:
        if self._ended:
            return
        self.conn.handle_timer(now)
        self._handle_events()
        self.flush()

    def check_timeouts(self, now: float) -> None:
        """The server's one-second sweep: QUIC's own timers (above) keep the transport's
        time; here the slow-head rule of the other adapters, per stream: a request head
        not complete `timeouts.request_head` after its first byte is reset
        H3_REQUEST_REJECTED (never processed: safe to retry). The connection goes on."""
        limit = self.state.config.timeouts.request_head
        h3 = self.h3
        if not self._heads_arriving or h3 is None or self._ended:
            return
        late = [sid for sid, since in self._heads_arriving.items() if now >= since + limit]
        for stream_id in late:
            log.debug("%s: request head too slow on stream %d", self.client_host, stream_id)
            self._heads_arriving.pop(stream_id, None)
            self._drop_request_stream(h3, stream_id, H3Error.H3_REQUEST_REJECTED)

    # -- the end of the connection --------------------------------------------------------

    def _close_quic(self, code: int, reason: str) -> None:
        if not self._ended:
            self.conn.close(error_code=code, reason_phrase=reason)
            self.output_ready()

    def _terminated(self) -> None:
        """aioquic says the connection is over (closed, drained, or idle timeout)."""
        if self._ended:
            return
        self._ended = True
        self._timer.cancel()
        self.endpoint.forget(self)
        self.connection_lost(None)

    def live_exchanges(self) -> Iterable[Exchange]:
        return self._exchanges.values()

    def forget_exchanges(self) -> None:
        self._exchanges.clear()
        self._blocked.clear()
        self._held.clear()
        self._body_bytes = 0

    def is_idle(self) -> bool:
        return self.handshake_done and not self._exchanges and not self._heads_arriving

    def shutdown(self) -> None:
        """Graceful (RFC 9114 §5.2): GOAWAY naming the first request we will not process,
        finish the ones before it, then close with H3_NO_ERROR."""
        if self._ended or self._goaway_id is not None:
            return
        h3 = self.h3
        if h3 is None or not self.handshake_done:
            self._close_quic(H3Error.H3_NO_ERROR, "shutdown")
            return
        self._goaway_id = max((*self._exchanges, *self._heads_arriving, -4)) + 4
        control = getattr(h3, "_local_control_stream_id", None)
        if control is not None:
            # aioquic has no GOAWAY call: the frame goes on our control stream.
            frame = encode_frame(FrameType.GOAWAY, encode_uint_var(self._goaway_id))
            self.conn.send_stream_data(control, frame)
        if self.is_idle():
            # Nothing of the client's to finish: the GOAWAY goes out, then CONNECTION_CLOSE
            # at once, as an idle HTTP/2 connection is closed. Waiting for the GOAWAY's
            # acknowledgement would hold the shutdown for its whole grace whenever a client
            # has gone without a word.
            self.flush()
            self._close_quic(H3Error.H3_NO_ERROR, "shutdown")
            return
        self.output_ready()  # the connection closes once its last answer is acknowledged

    def evict(self) -> None:
        self._close_quic(H3Error.H3_NO_ERROR, "server at its connection limit")
        self.flush()
        self._terminated()

    def close_transport(self) -> None:
        self._close_quic(H3Error.H3_NO_ERROR, "")

    def abort(self) -> None:
        """The shutdown grace is over: CONNECTION_CLOSE, and the connection is forgotten."""
        if not self._ended:
            self.conn.close(error_code=H3Error.H3_NO_ERROR, reason_phrase="shutdown")
            self.flush()
            self._terminated()


def _status(status: int) -> tuple[bytes, bytes]:
    return (b":status", _STATUS_BYTES.get(status) or str(status).encode("ascii"))


_STATUS_BYTES = {status: str(status).encode("ascii") for status in range(100, 600)}


def _unsent_bytes(quic: QuicConnection, stream_id: int) -> int:
    """Response bytes handed to aioquic for this stream and not yet sent. aioquic has no
    public call for it; its stream sender's offsets are read (pinned: aioquic 1.x)."""
    stream = quic._streams.get(stream_id)
    if stream is None:
        return 0
    sender = stream.sender
    unsent: int = sender._buffer_stop - sender.highest_offset
    return unsent


def _all_acknowledged(quic: QuicConnection) -> bool:
    """Nothing we sent is still unacknowledged (aioquic's loss recovery, read directly)."""
    return bool(quic._loss.bytes_in_flight == 0)
