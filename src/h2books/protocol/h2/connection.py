"""The HTTP/2 connection core (RFC 9113), sans-IO, server and client roles.

Bytes in (`receive_data`), events out, bytes to send (`data_to_send`). It never
raises for anything the peer sends: a connection error queues a GOAWAY and yields
`ConnectionTerminated`; a stream error queues a RST_STREAM (and `StreamReset` if
the application knew the stream). The jobs are split over the classes listed in
`state.py`; this one dispatches frames and holds the public API.

Time is given, never read: every call that carries input carries `now` (seconds on
any monotonic clock). `get_timer()` says when the next deadline is and
`handle_timer(now)` applies the rules whose deadline has passed:

- "preface" (server): the client preface and its first SETTINGS must arrive within
  `preface_timeout` of `initiate(now)`; otherwise the connection is dropped.
- "request_head": a request head (a header block awaiting CONTINUATIONs, or part of
  any frame other than DATA) must complete within `request_head_timeout`.
- "idle": no open stream and no activity for `idle_timeout`: GOAWAY, normal close.
- "stall": streams open and no activity for `stall_timeout`.
- "flow_blocked": our output held behind a shut flow-control window for
  `stall_timeout`, whatever else the peer sends.
- graceful shutdown: the final GOAWAY goes out at the latest `shutdown_grace` after
  `start_graceful_shutdown(now)`.

Activity is input (every `receive_data`) and output handed out by `data_to_send`.
The latter carries no time: it sets a flag that the next call with a `now` turns
into activity at that `now`. So a stall is detected within one stall period of the
true moment, never before it.
"""

from __future__ import annotations

from typing import Final, cast

from . import events as ev
from .config import H2Config
from .deadlines import Deadlines
from .errors import ErrorCode, H2ConnectionError, H2UsageError
from .framer import FrameHandler
from .frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_STREAM,
    GOAWAY,
    PADDED,
    PING,
    PRIORITY,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    build_ping,
    build_rst_stream,
    build_settings,
    build_window_update,
    parse_goaway,
    parse_settings,
    parse_u31,
)
from .scheduler import Fields
from .settings import DEFAULT_HEADER_TABLE_SIZE, MAX_WINDOW_SIZE, SettingCode
from .stream import (
    FRAME_RULES,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    RECV_END_STREAM,
    RESET_BY_PEER,
    RESET_BY_US,
    TRANSITIONS,
    Stream,
)
from .windows import ReceiveWindow

__all__ = ["H2Config", "H2Connection"]

_SETTINGS_ACK: Final = build_settings(ack=True)
# Where END_STREAM takes a stream whose own side is done (closed): looked up once, for
# `_on_whole_body` (every pushed response), not per stream.
_ENDED_BOTH_WAYS: Final = TRANSITIONS[(HALF_CLOSED_LOCAL, RECV_END_STREAM)]
# Our encoder never keeps a bigger dynamic table than this, whatever the peer allows.
_ENCODER_TABLE_CAP: Final = DEFAULT_HEADER_TABLE_SIZE
_KNOWN_ERROR_CODES: Final = {int(code): code for code in ErrorCode}


def _error_code(code: int) -> int:
    """A known code as its `ErrorCode` member, any other value as the plain int."""
    return _KNOWN_ERROR_CODES.get(code, code)


class H2Connection(Deadlines):
    """One HTTP/2 connection; see the module docstring and the method docs."""

    __slots__ = ()

    # -- public state ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once a connection error ended it, or after a GOAWAY (ours, final, or
        the peer's) when no stream is left open."""
        if self._terminated:
            return True
        return (self._goaway_final or self._goaway_received) and not self._streams

    @property
    def open_stream_count(self) -> int:
        """Every live stream: requests and pushed ones (reserved included)."""
        return len(self._streams)

    @property
    def request_stream_count(self) -> int:
        """Live streams the client opened (odd ids): what the server's
        SETTINGS_MAX_CONCURRENT_STREAMS limits. Pushed streams count against the
        client's own limit instead (RFC 9113 §5.1.2)."""
        return len(self._streams) - self._pushed_live

    @property
    def received_header_fields(self) -> tuple[int, int]:
        """(fields, their RFC 7541 §4.1 size) of every header block received so far: kept
        on the client side only (a server's are zeros)."""
        return self._decoder.decoded_fields, self._decoder.decoded_size

    @property
    def received_octets(self) -> tuple[int, int]:
        """(header block octets, DATA content octets) received so far, padding, priority
        fields and promised ids left out: what a wire report splits the bytes read into
        (the rest is framing). Header blocks are counted on the client side only."""
        return self._decoder.decoded_octets, self._content_received

    @property
    def has_partial_request(self) -> bool:
        """Part of a request head is waiting: an unfinished preface, a header block
        still expecting CONTINUATION frames, or part of a frame other than DATA. The
        "request_head" rule runs while this is true; a slow request body (partial
        DATA) is a stall, not a slow head."""
        if self._hb_sid:
            return True
        inbuf = self._inbuf
        return bool(inbuf) and (self._preface_pending or len(inbuf) < 4 or inbuf[3] != DATA)

    @property
    def flow_blocked_since(self) -> float | None:
        """Since when (a `now` given to the core) response data has been waiting for
        the peer's flow-control window without any of it going out; None while
        nothing waits."""
        return self._blocked_since if self._blocked else None

    # -- start -----------------------------------------------------------------------

    def initiate(self, now: float) -> None:
        """Queue our preface: (client: the magic string, then) SETTINGS and a
        WINDOW_UPDATE that raises the connection window to `connection_window_size`.
        `now` starts the preface clock."""
        if self._initiated:
            return
        self._now = self._started = self._last_activity = now
        self._queue_preface()

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed bytes from the peer; returns the events they produced. Never raises
        for peer input; after a connection error further input is ignored."""
        if self._terminated:
            return []
        if not self._initiated:
            self.initiate(now)
        if type(data) is not bytes:
            data = bytes(data)
        self._now = self._last_activity = now
        self._output_taken = False
        self._batch_first = self._highest_peer
        events: list[ev.Event] = []
        self._events = events
        inbuf = self._inbuf
        if inbuf:
            inbuf += data
            if len(inbuf) < self._need:
                self._track_head(now)
                return events
            data = bytes(inbuf)
            inbuf.clear()
        elif not data:
            return events
        try:
            offset = 0
            if self._preface_pending:
                offset = self._read_preface(data)
                if offset < 0:
                    self._track_head(now)
                    return events
            self._parse(data, offset)
        except H2ConnectionError as exc:
            self._connection_error(exc.error_code, str(exc))
        except Exception:  # a bug must not let a peer crash the server: fail closed
            self._connection_error(ErrorCode.INTERNAL_ERROR, "internal error")
        if self._cancelled is not None or (self._terminated and not self._client):
            self._drop_cancelled(events)
        self._track_head(now)
        return events

    def _track_head(self, now: float) -> None:
        """Start or stop the "request_head" clock after a read."""
        if self._hb_sid or (self._inbuf and self.has_partial_request):
            if self._head_since is None:
                self._head_since = now
        else:
            self._head_since = None

    def _drop_cancelled(self, events: list[ev.Event]) -> None:
        """Take back the events of requests nobody should work on: streams the peer
        opened and reset in the same batch (Rapid Reset: their handlers never run), or,
        once the connection is over, every request of the batch (no answer can go out)."""
        cancelled = self._cancelled or ()
        self._cancelled = None
        if self._terminated:
            events[:] = [
                e
                for e in events
                if type(e) not in _REQUEST_EVENTS and getattr(e, "stream_id", 0) not in cancelled
            ]
        else:
            events[:] = [e for e in events if getattr(e, "stream_id", 0) not in cancelled]

    # -- DATA ------------------------------------------------------------------------

    def _on_data(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if not sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0")
        flow_length = stop - start
        if flags & PADDED:
            if not flow_length:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for pad length")
            pad = data[start]
            start += 1
            if pad >= flow_length:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds payload")
            stop -= pad
        self._content_received += stop - start
        recv = self._recv
        if flow_length > recv.available:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded")
        recv.available -= flow_length
        stream = self._streams.get(sid)
        if stream is None:
            self._on_data_without_stream(sid, flow_length)
            return
        if stream.state == HALF_CLOSED_REMOTE or not stream.head_received:
            rule = FRAME_RULES.get((DATA, stream.state))
            if rule is not None and rule.error is not None:  # a reserved (pushed) stream
                raise H2ConnectionError(rule.error, rule.reason)
            self._credit_connection(flow_length)
            closed = stream.state == HALF_CLOSED_REMOTE
            code = ErrorCode.STREAM_CLOSED if closed else ErrorCode.PROTOCOL_ERROR
            self._stream_error(stream, sid, code)
            return
        end_stream = bool(flags & END_STREAM)
        inbound = stream.inbound
        if inbound is None:
            if end_stream and stream.state == HALF_CLOSED_LOCAL:
                self._on_whole_body(stream, sid, data, start, stop, flow_length)
                return
            inbound = stream.inbound = ReceiveWindow(self._local_initial_window)
        if flow_length > inbound.available:
            self._credit_connection(flow_length)
            self._stream_error(stream, sid, ErrorCode.FLOW_CONTROL_ERROR)
            return
        inbound.available -= flow_length
        size = stop - start
        received = stream.received + size
        stream.received = received
        expected = stream.content_length
        if expected is not None and (received > expected or (end_stream and received != expected)):
            # Not delivered: the connection window gets these octets back right away.
            inbound.available += flow_length
            self._credit_connection(flow_length)
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        if not flow_length and not end_stream:
            self._charge_control()
        self._events.append(ev.data_received(sid, data[start:stop], flow_length, end_stream))
        if end_stream:
            self._remote_ended(stream)

    def _on_whole_body(
        self, stream: Stream, sid: int, data: bytes, start: int, stop: int, flow_length: int
    ) -> None:
        """The first DATA of a stream ends it, and our side is done (a response in one
        frame: every book, every pushed response): the same checks as any DATA, without a
        stream window made for one comparison. The stream closes here, so its octets go
        straight back to the connection window, as `_forget` gives back what a stream
        received and nobody acknowledged."""
        self._credit_connection(flow_length)
        if flow_length > self._local_initial_window:
            self._stream_error(stream, sid, ErrorCode.FLOW_CONTROL_ERROR)
            return
        received = stream.received + stop - start
        stream.received = received
        expected = stream.content_length
        if expected is not None and received != expected:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        self._events.append(ev.data_received(sid, data[start:stop], flow_length, True))
        self._forget(stream, _ENDED_BOTH_WAYS)  # `_remote_ended`, its move known

    def _on_data_without_stream(self, sid: int, flow_length: int) -> None:
        if self._is_idle(sid):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream")
        # Nobody will consume these octets: give them back to the connection window.
        self._credit_connection(flow_length)
        self._apply_frame_rule(DATA, sid)

    # -- control frames --------------------------------------------------------------

    def _on_settings(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if stop != start:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with payload")
            self._on_settings_ack()
            return
        if (stop - start) % 6:
            raise H2ConnectionError(
                ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6"
            )
        self._charge_control()
        peer = self._peer
        old_window = peer.initial_window_size
        changes = peer.apply(parse_settings(data, start, stop), peer_is_server=self._client)
        delta = peer.initial_window_size - old_window
        if delta:
            streams = self._streams.values()
            if delta > 0:
                for stream in streams:
                    if stream.send_window + delta > MAX_WINDOW_SIZE:
                        raise H2ConnectionError(
                            ErrorCode.FLOW_CONTROL_ERROR, "stream window above 2^31-1"
                        )
            for stream in streams:
                stream.send_window += delta
            self._peer_initial_window = peer.initial_window_size
        self._peer_max_frame = peer.max_frame_size
        table = min(peer.header_table_size, _ENCODER_TABLE_CAP)
        if table != self._encoder_table:
            self._encoder_table = table
            self._encoder.set_max_table_size(table)
        self._queue_control(_SETTINGS_ACK)
        self._events.append(ev.RemoteSettingsChanged(changes))
        if delta > 0 and self._blocked:
            self._flush_blocked()

    def _on_settings_ack(self) -> None:
        changed = self._local.on_ack()
        if changed is None:
            # An ACK of nothing we sent: an empty frame that only costs us (CVE-2019-9518).
            self._charge_control()
            return
        if changed:
            window = changed.get(SettingCode.INITIAL_WINDOW_SIZE)
            if window is not None:
                self._local_initial_window = window
                for stream in self._streams.values():
                    if stream.inbound is not None:
                        stream.inbound.resize(window)
            table = changed.get(SettingCode.HEADER_TABLE_SIZE)
            if table is not None:
                self._decoder.max_allowed_table_size = table
        self._events.append(ev.SettingsAcknowledged())

    def _on_window_update(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if stop - start != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4")
        increment = parse_u31(data, start)
        if not sid:
            if not increment:
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            window = self._send_window + increment
            if window > MAX_WINDOW_SIZE:
                raise H2ConnectionError(
                    ErrorCode.FLOW_CONTROL_ERROR, "connection window above 2^31-1"
                )
            self._send_window = window
            if self._blocked:
                self._flush_blocked()
            self._events.append(ev.WindowUpdated(0))
            return
        stream = self._streams.get(sid)
        if stream is None:
            self._apply_frame_rule(WINDOW_UPDATE, sid)
            return
        if not increment:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        window = stream.send_window + increment
        if window > MAX_WINDOW_SIZE:
            self._stream_error(stream, sid, ErrorCode.FLOW_CONTROL_ERROR)
            return
        stream.send_window = window
        if stream.send_queue is not None:
            self._flush_blocked()
        self._events.append(ev.WindowUpdated(sid))

    def _on_ping(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream")
        if stop - start != 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING length is not 8")
        opaque = data[start:stop]
        if flags & ACK:
            if self._shutdown_ping is not None and opaque == self._shutdown_ping:
                self.finish_graceful_shutdown()
                return
            # Only our own PINGs earn an ACK; a stream of them is a flood like any other.
            self._charge_control()
            self._events.append(ev.PingAckReceived(opaque))
            return
        self._charge_control()
        self._queue_control(build_ping(opaque, ack=True))

    def _on_rst_stream(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if not sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
        if stop - start != 4:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM length is not 4")
        stream = self._streams.get(sid)
        if stream is None:
            self._apply_frame_rule(RST_STREAM, sid)
            if not self._spend_push_credit(sid):
                self._charge_control()  # harmless (it crossed our END_STREAM) unless repeated
            return
        if not self._spend_push_credit(sid):
            self._charge_reset()
        code = _error_code(int.from_bytes(data[start:stop], "big"))
        self._forget(stream, RESET_BY_PEER)
        self._events.append(ev.StreamReset(sid, code, True))
        self._cancel_if_unannounced(sid)

    def _on_priority(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if not sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0")
        # RFC 9113 deprecates the priority tree: we only check the frame is well formed.
        if stop - start != 5:
            self._stream_error(self._streams.get(sid), sid, ErrorCode.FRAME_SIZE_ERROR)
            return
        if parse_u31(data, start) == sid:
            self._stream_error(self._streams.get(sid), sid, ErrorCode.PROTOCOL_ERROR)
            return
        self._charge_control()

    def _on_goaway(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream")
        if stop - start < 8:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY shorter than 8")
        last, code, debug = parse_goaway(data, start, stop)
        code = _error_code(code)
        self._goaway_received = True
        self._events.append(ev.GoAwayReceived(code, last, debug))
        if code != ErrorCode.NO_ERROR:
            self._terminate()
            self._events.append(ev.ConnectionTerminated(code, last, debug, True))
            return
        # Our streams above `last` were never processed by the peer: safe to retry.
        parity = self._peer_parity ^ 1
        for stream_id in [s for s in self._streams if s > last and (s & 1) == parity]:
            self._forget(self._streams[stream_id], RESET_BY_PEER)
            self._events.append(ev.StreamReset(stream_id, ErrorCode.REFUSED_STREAM, True))

    # -- application calls------------------------------------------------------

    def reset_stream(self, stream_id: int, error_code: ErrorCode = ErrorCode.CANCEL) -> None:
        """RST_STREAM from the application (no StreamReset event for it)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            if self._terminated or (stream_id and not self._is_idle(stream_id)):
                return
            raise H2UsageError(f"stream {stream_id} is not open")
        self._out += build_rst_stream(stream_id, error_code)
        self._forget(stream, RESET_BY_US)

    def ping(self, opaque: bytes = b"\0" * 8) -> None:
        if len(opaque) != 8:
            raise H2UsageError("PING payload must be 8 octets")
        if not self._terminated:
            self._out += build_ping(opaque)

    def acknowledge_received_data(self, stream_id: int, size: int) -> None:
        """The application consumed `size` flow-controlled octets of `stream_id`.
        Credit goes back in WINDOW_UPDATEs once half a window is consumed. For a
        stream already gone it is a no-op: its octets were credited when it ended."""
        if size <= 0 or self._terminated:
            return
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        inbound = stream.inbound
        if inbound is None:
            return
        size = min(size, inbound.outstanding)
        if size <= 0:
            return
        increment = inbound.release(size)
        if increment and stream.state != HALF_CLOSED_REMOTE:
            self._out += build_window_update(stream_id, increment)
        self._credit_connection(size)

    # -- client role-----------------------------------------------------------------

    def send_request(self, fields: Fields, body: bytes = b"", end_stream: bool = True) -> int:
        """Open the next stream with `fields` (pseudo-headers first); returns its id."""
        self._queue_preface()
        stream = self._open_local_stream(fields)
        sid = stream.stream_id
        self._write_header_block(sid, self._encoder.encode(fields), end_stream and not body)
        stream.headers_sent = True
        if body:
            self._send_body(stream, body, end_stream)
        elif end_stream:
            self._local_ended(stream)
        return sid


# What a server application would act on: dropped once nobody can be answered.
_REQUEST_EVENTS: Final = frozenset({ev.RequestReceived, ev.DataReceived, ev.TrailersReceived})

# Frame types other than HEADERS and DATA, dispatched through one shared table: a
# per-connection dict of bound methods would cost every idle connection ~1 KB.
H2Connection._control_handlers = cast(
    dict[int, FrameHandler],
    {
        SETTINGS: H2Connection._on_settings,
        WINDOW_UPDATE: H2Connection._on_window_update,
        PING: H2Connection._on_ping,
        RST_STREAM: H2Connection._on_rst_stream,
        PRIORITY: H2Connection._on_priority,
        GOAWAY: H2Connection._on_goaway,
        PUSH_PROMISE: H2Connection._on_push_promise,
        CONTINUATION: H2Connection._on_stray_continuation,
    },
)
