"""The HTTP/2 connection core (RFC 9113), sans-IO, server and client roles.

Bytes in (`receive_data`), events out, bytes to send (`data_to_send`). It never
raises for anything the peer sends: a connection error queues a GOAWAY and yields
`ConnectionTerminated`; a stream error queues a RST_STREAM (and `StreamReset` if
the application knew the stream).

Hot path design: `receive_data` walks the buffer with an offset and one
`struct.unpack_from` per frame header; HEADERS and DATA are dispatched first; a
response that fits in the flow-control windows is written by `send_response` as
two frame headers into one bytearray and the stream is forgotten at once. Closed
streams leave no per-stream entry behind beyond a small fixed-size ring of recent
closes (to pick the exact error code for late frames) and the highest stream ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from h2books.protocol.hpack import (
    Decoder,
    Encoder,
    HeaderListBombError,
    HeaderListTooLargeError,
    HPACKError,
)

from . import events as ev
from .budget import TokenBucket
from .errors import ErrorCode, H2ConnectionError, H2UsageError
from .frames import (
    ACK,
    CLIENT_PREFACE,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FRAME_HEADER,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PRIORITY,
    PRIORITY_FLAG,
    PUSH_PROMISE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    build_goaway,
    build_ping,
    build_rst_stream,
    build_settings,
    build_window_update,
    parse_goaway,
    parse_settings,
    parse_u31,
)
from .settings import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFAULT_INITIAL_WINDOW_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    MAX_FRAME_SIZE_LIMIT,
    MAX_WINDOW_SIZE,
    LocalSettings,
    PeerSettings,
    SettingCode,
)
from .stream import CLOSED_NORMALLY, RESET_BY_PEER, RESET_BY_US, SendQueue, Stream
from .validation import MalformedHeaders, validate_request, validate_response, validate_trailers
from .windows import ReceiveWindow

__all__ = ["H2Config", "H2Connection"]

Fields = Sequence[tuple[bytes, bytes]]
_FrameHandler = Callable[["H2Connection", int, int, bytes, int, int], None]

_pack_header = FRAME_HEADER.pack
_unpack_header = FRAME_HEADER.unpack_from

_MAX_STREAM_ID: Final = (1 << 31) - 1
_SETTINGS_ACK: Final = build_settings(ack=True)
# Opaque data of the PING that closes the first stage of a graceful shutdown.
_SHUTDOWN_PING: Final = b"h2b-shut"
# Our encoder never keeps a bigger dynamic table than this, whatever the peer allows.
_ENCODER_TABLE_CAP: Final = DEFAULT_HEADER_TABLE_SIZE
_RECENT_MIN: Final = 32
_RECENT_MAX: Final = 256

_STATUS_FIELDS: Final = {code: (b":status", str(code).encode("ascii")) for code in range(100, 600)}
_KNOWN_ERROR_CODES: Final = {int(code): code for code in ErrorCode}


def _error_code(code: int) -> int:
    """A known code as its `ErrorCode` member, any other value as the plain int."""
    return _KNOWN_ERROR_CODES.get(code, code)


@dataclass(slots=True)
class H2Config:
    client_side: bool = False
    # Advertised; client streams beyond it get RST_STREAM REFUSED_STREAM.
    max_concurrent_streams: int = 128
    # Advertised stream receive window (SETTINGS_INITIAL_WINDOW_SIZE).
    initial_window_size: int = 1 << 20
    # Our connection receive window, raised by a WINDOW_UPDATE on stream 0 at start.
    connection_window_size: int = 1 << 24
    # Advertised SETTINGS_MAX_FRAME_SIZE: the largest frame we accept.
    max_frame_size: int = 16384
    max_header_list_size: int = 65536
    header_table_size: int = 4096
    # Per header block; beyond either -> GOAWAY ENHANCE_YOUR_CALM.
    max_continuation_frames: int = 16
    max_header_block_bytes: int = 131072
    # Churn and flood budgets (token buckets refilled by `now`).
    reset_budget: int = 200
    reset_refill_per_second: float = 100.0
    control_frame_budget: int = 1000
    control_refill_per_second: float = 500.0
    # Unsent ACK/RST bytes we let pile up before deciding the peer is not reading.
    max_outbound_control_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if not DEFAULT_MAX_FRAME_SIZE <= self.max_frame_size <= MAX_FRAME_SIZE_LIMIT:
            raise ValueError("max_frame_size must be in [16384, 2^24-1]")
        if not 0 <= self.initial_window_size <= MAX_WINDOW_SIZE:
            raise ValueError("initial_window_size must be in [0, 2^31-1]")
        if not 0 <= self.connection_window_size <= MAX_WINDOW_SIZE:
            raise ValueError("connection_window_size must be in [0, 2^31-1]")
        for name in ("max_concurrent_streams", "max_header_list_size", "header_table_size"):
            if not 0 <= getattr(self, name) < 1 << 32:
                raise ValueError(f"{name} must fit in 32 bits")


class H2Connection:
    """One HTTP/2 connection; see the module docstring and the method docs."""

    __slots__ = (
        "_awaiting_settings",
        "_batch_first",
        "_blocked",
        "_blocked_since",
        "_cancelled",
        "_client",
        "_config",
        "_control_budget",
        "_control_pending",
        "_decoder",
        "_encoder",
        "_encoder_table",
        "_events",
        "_goaway_final",
        "_goaway_last",
        "_goaway_received",
        "_hb_bad_priority",
        "_hb_chunks",
        "_hb_count",
        "_hb_end_stream",
        "_hb_sid",
        "_hb_size",
        "_highest_local",
        "_highest_peer",
        "_inbuf",
        "_initiated",
        "_local",
        "_local_initial_window",
        "_max_block_bytes",
        "_max_frame_in",
        "_max_streams",
        "_need",
        "_next_local",
        "_now",
        "_out",
        "_peer",
        "_peer_initial_window",
        "_peer_max_frame",
        "_peer_parity",
        "_preface_pending",
        "_recent",
        "_recent_pos",
        "_recent_ring",
        "_recent_size",
        "_recv",
        "_reset_budget",
        "_send_window",
        "_shutdown_ping",
        "_streams",
        "_terminated",
    )

    def __init__(self, config: H2Config | None = None) -> None:
        cfg = config if config is not None else H2Config()
        self._config = cfg
        self._client = cfg.client_side
        # Peer-initiated streams are odd for a server, even (pushes) for a client.
        self._peer_parity = 0 if cfg.client_side else 1
        self._out = bytearray()
        self._inbuf = bytearray()
        self._need = 0
        self._initiated = False
        self._preface_pending = not cfg.client_side
        self._awaiting_settings = True
        self._terminated = False
        self._events: list[ev.Event] = []
        self._now = 0.0

        self._streams: dict[int, Stream] = {}
        self._blocked: dict[int, Stream] = {}
        self._blocked_since = 0.0
        self._highest_peer = 0
        self._highest_local = 0
        # The highest peer stream id before the current `receive_data` call, and the
        # streams opened and reset within it (their events are taken back at its end).
        self._batch_first = 0
        self._cancelled: set[int] | None = None
        self._next_local = 1 if cfg.client_side else 2
        size = min(_RECENT_MAX, max(_RECENT_MIN, cfg.max_concurrent_streams))
        self._recent: dict[int, int] = {}
        # Allocated with the first closed stream: an idle connection never needs it.
        self._recent_ring: list[int] = []
        self._recent_size = size
        self._recent_pos = 0

        self._decoder = Decoder(
            max_table_size=DEFAULT_HEADER_TABLE_SIZE,
            max_header_list_size=cfg.max_header_list_size,
        )
        # Until the peer acknowledges our SETTINGS it may use either table size.
        self._decoder.max_allowed_table_size = max(DEFAULT_HEADER_TABLE_SIZE, cfg.header_table_size)
        self._encoder = Encoder(max_table_size=DEFAULT_HEADER_TABLE_SIZE)
        self._encoder_table = DEFAULT_HEADER_TABLE_SIZE

        self._local = LocalSettings()
        self._peer = PeerSettings()
        self._local_initial_window = DEFAULT_INITIAL_WINDOW_SIZE
        # Frames up to our advertised size are accepted at once: before its ACK the
        # peer is bound by the smaller default anyway.
        self._max_frame_in = cfg.max_frame_size
        self._max_streams = cfg.max_concurrent_streams
        self._max_block_bytes = cfg.max_header_block_bytes
        self._peer_max_frame = DEFAULT_MAX_FRAME_SIZE
        self._peer_initial_window = DEFAULT_INITIAL_WINDOW_SIZE
        self._send_window = DEFAULT_INITIAL_WINDOW_SIZE
        self._recv = ReceiveWindow(max(DEFAULT_INITIAL_WINDOW_SIZE, cfg.connection_window_size))

        self._hb_sid = 0
        self._hb_end_stream = False
        self._hb_bad_priority = False
        self._hb_chunks: list[bytes] = []
        self._hb_count = 0
        self._hb_size = 0

        self._goaway_last: int | None = None
        self._goaway_final = False
        self._goaway_received = False
        self._shutdown_ping: bytes | None = None

        self._reset_budget = TokenBucket(cfg.reset_budget, cfg.reset_refill_per_second)
        self._control_budget = TokenBucket(cfg.control_frame_budget, cfg.control_refill_per_second)
        self._control_pending = 0

    # -- public state ----------------------------------------------------------------

    @property
    def outbound_buffer_size(self) -> int:
        return len(self._out)

    @property
    def closed(self) -> bool:
        """True once a connection error ended it, or after a GOAWAY (ours, final, or
        the peer's) when no stream is left open."""
        if self._terminated:
            return True
        return (self._goaway_final or self._goaway_received) and not self._streams

    @property
    def open_stream_count(self) -> int:
        return len(self._streams)

    @property
    def has_partial_request(self) -> bool:
        """Part of a request head is waiting: an unfinished preface, a header block
        still expecting CONTINUATION frames, or part of a frame other than DATA. The
        runtime's slow-request clock (slowloris) runs while this is true; a slow
        request body (partial DATA) is a stall, not a slow head."""
        if self._hb_sid:
            return True
        inbuf = self._inbuf
        return bool(inbuf) and (self._preface_pending or len(inbuf) < 4 or inbuf[3] != DATA)

    @property
    def flow_blocked_since(self) -> float | None:
        """Since when (a `now` given to `receive_data`) response data has been waiting
        for the peer's flow-control window without any of it going out; None while
        nothing waits. A runtime closes a connection stalled this way for too long
        whatever else the peer sends (PINGs, SETTINGS, PRIORITY...)."""
        return self._blocked_since if self._blocked else None

    def data_to_send(self) -> bytes:
        out = self._out
        if not out:
            return b""
        data = bytes(out)
        out.clear()
        self._control_pending = 0
        return data

    # -- start -----------------------------------------------------------------------

    def initiate(self) -> None:
        """Queue our preface: (client: the magic string, then) SETTINGS and a
        WINDOW_UPDATE that raises the connection window to `connection_window_size`."""
        if self._initiated:
            return
        self._initiated = True
        cfg = self._config
        values: dict[int, int] = {}
        if cfg.header_table_size != DEFAULT_HEADER_TABLE_SIZE:
            values[SettingCode.HEADER_TABLE_SIZE] = cfg.header_table_size
        if self._client:
            values[SettingCode.ENABLE_PUSH] = 0
        values[SettingCode.MAX_CONCURRENT_STREAMS] = cfg.max_concurrent_streams
        if cfg.initial_window_size != DEFAULT_INITIAL_WINDOW_SIZE:
            values[SettingCode.INITIAL_WINDOW_SIZE] = cfg.initial_window_size
        if cfg.max_frame_size != DEFAULT_MAX_FRAME_SIZE:
            values[SettingCode.MAX_FRAME_SIZE] = cfg.max_frame_size
        values[SettingCode.MAX_HEADER_LIST_SIZE] = cfg.max_header_list_size
        out = self._out
        if self._client:
            out += CLIENT_PREFACE
        out += build_settings(self._local.send(values))
        extra = self._recv.target - DEFAULT_INITIAL_WINDOW_SIZE
        if extra > 0:
            out += build_window_update(0, extra)

    # -- receiving -------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float = 0.0) -> list[ev.Event]:
        """Feed bytes from the peer; returns the events they produced. Never raises
        for peer input; after a connection error further input is ignored."""
        if self._terminated:
            return []
        if not self._initiated:
            self.initiate()
        if type(data) is not bytes:
            data = bytes(data)
        self._now = now
        self._batch_first = self._highest_peer
        events: list[ev.Event] = []
        self._events = events
        inbuf = self._inbuf
        if inbuf:
            inbuf += data
            if len(inbuf) < self._need:
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
                    return events
            self._parse(data, offset)
        except H2ConnectionError as exc:
            self._connection_error(exc.error_code, str(exc))
        except Exception:  # a bug must not let a peer crash the server: fail closed
            self._connection_error(ErrorCode.INTERNAL_ERROR, "internal error")
        if self._cancelled is not None or (self._terminated and not self._client):
            self._drop_cancelled(events)
        return events

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

    def _read_preface(self, data: bytes) -> int:
        size = len(CLIENT_PREFACE)
        if data[:size] != CLIENT_PREFACE[: len(data)]:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "invalid connection preface")
        if len(data) < size:
            self._inbuf += data
            self._need = size
            return -1
        self._preface_pending = False
        return size

    def _parse(self, data: bytes, offset: int) -> None:
        end = len(data)
        unpack = _unpack_header
        max_in = self._max_frame_in
        if self._awaiting_settings and end - offset >= 9:
            word, flags, _ = unpack(data, offset)
            if word & 0xFF != SETTINGS or flags & ACK:
                raise H2ConnectionError(
                    ErrorCode.PROTOCOL_ERROR, "the first frame must be SETTINGS"
                )
            self._awaiting_settings = False
        handlers = _CONTROL_HANDLERS
        while end - offset >= 9:
            word, flags, sid = unpack(data, offset)
            length = word >> 8
            if length > max_in:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame larger than allowed")
            start = offset + 9
            stop = start + length
            if stop > end:
                break
            offset = stop
            frame_type = word & 0xFF
            sid &= 0x7FFFFFFF
            if self._hb_sid:
                self._on_block_frame(frame_type, flags, sid, data, start, stop)
            elif frame_type == HEADERS:
                self._on_headers(flags, sid, data, start, stop)
            elif frame_type == DATA:
                self._on_data(flags, sid, data, start, stop)
            else:
                handler = handlers.get(frame_type)
                if handler is None:
                    # Unknown frame types are ignored (§5.5), but they still cost us.
                    self._charge_control()
                else:
                    handler(self, flags, sid, data, start, stop)
                    if self._terminated:
                        return
        if offset < end:
            self._inbuf += memoryview(data)[offset:]
            if end - offset >= 9:
                self._need = 9 + (unpack(data, offset)[0] >> 8)
            else:
                self._need = 9

    # -- HEADERS / CONTINUATION ------------------------------------------------------

    def _on_headers(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if not sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0")
        bad_priority = False
        if flags & (PADDED | PRIORITY_FLAG):
            start, stop, bad_priority = self._headers_prefix(flags, sid, data, start, stop)
        if stop - start > self._max_block_bytes:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        if flags & END_HEADERS:
            end_stream = flags & END_STREAM != 0
            self._on_header_block(sid, end_stream, data[start:stop], bad_priority)
            return
        self._hb_sid = sid
        self._hb_end_stream = bool(flags & END_STREAM)
        self._hb_bad_priority = bad_priority
        self._hb_chunks = [data[start:stop]]
        self._hb_count = 0
        self._hb_size = stop - start

    @staticmethod
    def _headers_prefix(
        flags: int, sid: int, data: bytes, start: int, stop: int
    ) -> tuple[int, int, bool]:
        """Strip the Pad Length and priority fields of a HEADERS payload; returns the
        fragment bounds and whether the stream depends on itself."""
        pad = 0
        if flags & PADDED:
            if start >= stop:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for pad length")
            pad = data[start]
            start += 1
        bad_priority = False
        if flags & PRIORITY_FLAG:
            if stop - start < 5:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for priority")
            bad_priority = parse_u31(data, start) == sid
            start += 5
        # Padding may use up what is left after the fields, not more (§6.2).
        if pad > stop - start:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds payload")
        return start, stop - pad, bad_priority

    def _on_block_frame(
        self, frame_type: int, flags: int, sid: int, data: bytes, start: int, stop: int
    ) -> None:
        """Any frame while a header block is open: only its CONTINUATION is allowed."""
        if frame_type != CONTINUATION or sid != self._hb_sid:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, "header block interrupted by another frame"
            )
        self._hb_count += 1
        self._hb_size += stop - start
        cfg = self._config
        if self._hb_count > cfg.max_continuation_frames:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many CONTINUATION frames")
        if self._hb_size > cfg.max_header_block_bytes:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        self._hb_chunks.append(data[start:stop])
        if flags & END_HEADERS:
            block = b"".join(self._hb_chunks)
            self._hb_chunks = []
            self._hb_sid = 0
            self._on_header_block(sid, self._hb_end_stream, block, self._hb_bad_priority)

    def _on_stray_continuation(
        self, flags: int, sid: int, data: bytes, start: int, stop: int
    ) -> None:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block")

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]] | None:
        """The field list, or None when it exceeds our header list size (the HPACK
        state is still in sync then, so only the stream suffers)."""
        try:
            return self._decoder.decode(block)
        except HeaderListTooLargeError:
            return None
        except HeaderListBombError as exc:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, str(exc)) from None
        except HPACKError as exc:
            raise H2ConnectionError(ErrorCode.COMPRESSION_ERROR, str(exc)) from None

    def _on_header_block(
        self, sid: int, end_stream: bool, block: bytes, bad_priority: bool
    ) -> None:
        stream = self._streams.get(sid)
        if stream is not None:
            self._on_stream_headers(stream, end_stream, block, bad_priority)
            return
        if (sid & 1) != self._peer_parity or sid <= self._highest_peer:
            self._on_headers_without_stream(sid, block)
            return
        if self._client:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "server opened a stream")
        # A new request stream.
        self._highest_peer = sid
        fields = self._decode(block)
        goaway_last = self._goaway_last
        if goaway_last is not None and sid > goaway_last:
            return  # after our GOAWAY: not processed, ignored (HPACK state kept in sync)
        if bad_priority:
            self._stream_error(None, sid, ErrorCode.PROTOCOL_ERROR)
            return
        if fields is None:
            self._reject_oversized_request(sid, end_stream)
            return
        if len(self._streams) >= self._max_streams:
            self._stream_error(None, sid, ErrorCode.REFUSED_STREAM)
            return
        try:
            method, scheme, authority, path, headers, content_length = validate_request(fields)
        except MalformedHeaders:
            self._reject_malformed_request(sid)
            return
        if end_stream and content_length:
            self._reject_malformed_request(sid)
            return
        stream = Stream(sid, self._peer_initial_window, end_stream, content_length)
        stream.head_received = True
        self._streams[sid] = stream
        self._events.append(
            ev.RequestReceived(sid, method, scheme, authority, path, headers, end_stream)
        )

    def _on_headers_without_stream(self, sid: int, block: bytes) -> None:
        """HEADERS on an id with no open stream that cannot open a new one."""
        if self._is_idle(sid):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on an unusable stream id")
        how = self._recent.get(sid)
        goaway_last = self._goaway_last
        if how == RESET_BY_US or (
            goaway_last is not None and (sid & 1) == self._peer_parity and sid > goaway_last
        ):
            # Frames in flight after our RST_STREAM/GOAWAY: ignore, but keep HPACK in sync.
            self._decode(block)
            return
        if how is not None:
            raise H2ConnectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream")
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "stream id reused or out of order")

    def _on_stream_headers(
        self, stream: Stream, end_stream: bool, block: bytes, bad_priority: bool
    ) -> None:
        fields = self._decode(block)
        if stream.remote_closed:
            self._stream_error(stream, stream.stream_id, ErrorCode.STREAM_CLOSED)
            return
        if bad_priority:
            self._stream_error(stream, stream.stream_id, ErrorCode.PROTOCOL_ERROR)
            return
        if fields is None:
            self._stream_error(stream, stream.stream_id, ErrorCode.CANCEL)
            return
        if not stream.head_received:
            self._on_response_head(stream, end_stream, fields)
            return
        # Trailers.
        sid = stream.stream_id
        if not end_stream:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        try:
            headers = validate_trailers(fields)
        except MalformedHeaders:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        expected = stream.content_length
        if expected is not None and expected != stream.received:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        self._events.append(ev.TrailersReceived(sid, headers))
        self._remote_ended(stream)

    def _on_response_head(
        self, stream: Stream, end_stream: bool, fields: list[tuple[bytes, bytes]]
    ) -> None:
        sid = stream.stream_id
        try:
            status, headers, content_length = validate_response(fields)
        except MalformedHeaders:
            self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
            return
        if status < 200:
            # 101 does not exist in HTTP/2 (§8.6); an informational head never ends a stream.
            if status == 101 or status < 100 or end_stream:
                self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
                return
            self._events.append(ev.InformationalResponseReceived(sid, status, headers))
            return
        stream.head_received = True
        # Responses without content (HEAD, 204, 304) may announce a length anyway.
        if not stream.is_head_request and status not in (204, 304):
            if end_stream and content_length:
                self._stream_error(stream, sid, ErrorCode.PROTOCOL_ERROR)
                return
            stream.content_length = content_length
        self._events.append(ev.ResponseReceived(sid, status, headers, end_stream))
        if end_stream:
            self._remote_ended(stream)

    def _reject_oversized_request(self, sid: int, end_stream: bool) -> None:
        """A request head over our header list size: answer 431 (RFC 6585) ourselves;
        the application never sees the stream."""
        self._charge_reset()
        self._write_header_block(sid, self._encoder.encode([_STATUS_FIELDS[431]]), True)
        if not end_stream:
            self._queue_control(build_rst_stream(sid, ErrorCode.NO_ERROR))
        self._remember_closed(sid, RESET_BY_US)

    def _reject_malformed_request(self, sid: int) -> None:
        """A malformed request (§8.1.1): a 400 first, as the RFC asks servers to do, then
        the stream error. The 400 leaves the stream open (no END_STREAM) so that the
        RST_STREAM PROTOCOL_ERROR is what ends it."""
        self._write_header_block(sid, self._encoder.encode([_STATUS_FIELDS[400]]), False)
        self._stream_error(None, sid, ErrorCode.PROTOCOL_ERROR)

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
        recv = self._recv
        if flow_length > recv.available:
            raise H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded")
        recv.available -= flow_length
        stream = self._streams.get(sid)
        if stream is None:
            self._on_data_without_stream(sid, flow_length)
            return
        if stream.remote_closed or not stream.head_received:
            self._credit_connection(flow_length)
            code = ErrorCode.STREAM_CLOSED if stream.remote_closed else ErrorCode.PROTOCOL_ERROR
            self._stream_error(stream, sid, code)
            return
        inbound = stream.inbound
        if inbound is None:
            inbound = stream.inbound = ReceiveWindow(self._local_initial_window)
        if flow_length > inbound.available:
            self._credit_connection(flow_length)
            self._stream_error(stream, sid, ErrorCode.FLOW_CONTROL_ERROR)
            return
        inbound.available -= flow_length
        end_stream = bool(flags & END_STREAM)
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
        self._events.append(ev.DataReceived(sid, data[start:stop], flow_length, end_stream))
        if end_stream:
            self._remote_ended(stream)

    def _on_data_without_stream(self, sid: int, flow_length: int) -> None:
        if self._is_idle(sid):
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream")
        # Nobody will consume these octets: give them back to the connection window.
        self._credit_connection(flow_length)
        how = self._recent.get(sid)
        goaway_last = self._goaway_last
        if how == RESET_BY_US or (
            goaway_last is not None and (sid & 1) == self._peer_parity and sid > goaway_last
        ):
            return  # in flight when we reset the stream or sent GOAWAY
        if how == CLOSED_NORMALLY:
            raise H2ConnectionError(ErrorCode.STREAM_CLOSED, "DATA after END_STREAM")
        self._stream_error(None, sid, ErrorCode.STREAM_CLOSED)

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
            if self._is_idle(sid):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return  # closed streams may still get one (§5.1)
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
            if self._is_idle(sid):
                raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream")
            self._charge_control()  # harmless (it crossed our END_STREAM) unless repeated
            return
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

    def _on_push_promise(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        # A server never receives one; our clients announce ENABLE_PUSH=0.
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE not allowed")

    # -- stream bookkeeping ----------------------------------------------------------

    def _is_idle(self, sid: int) -> bool:
        if (sid & 1) == self._peer_parity:
            return sid > self._highest_peer
        return sid > self._highest_local

    def _remember_closed(self, sid: int, how: int) -> None:
        recent = self._recent
        ring = self._recent_ring
        if not ring:
            ring = self._recent_ring = [0] * self._recent_size
        pos = self._recent_pos
        old = ring[pos]
        if old and old != sid:
            recent.pop(old, None)
        ring[pos] = sid
        recent[sid] = how
        pos += 1
        self._recent_pos = 0 if pos == len(ring) else pos

    def _forget(self, stream: Stream, how: int) -> None:
        sid = stream.stream_id
        del self._streams[sid]
        if stream.send_queue is not None:
            stream.send_queue = None
            self._blocked.pop(sid, None)
        inbound = stream.inbound
        if inbound is not None:
            # Octets received but never acknowledged: the connection window gets them back.
            outstanding = inbound.outstanding
            if outstanding > 0:
                self._credit_connection(outstanding)
        self._remember_closed(sid, how)

    def _remote_ended(self, stream: Stream) -> None:
        stream.remote_closed = True
        if stream.end_sent:
            self._forget(stream, CLOSED_NORMALLY)

    def _local_ended(self, stream: Stream) -> None:
        stream.end_sent = True
        if stream.remote_closed:
            self._forget(stream, CLOSED_NORMALLY)

    def _stream_error(self, stream: Stream | None, sid: int, code: ErrorCode) -> None:
        """A stream error caused by the peer: RST_STREAM, and StreamReset if the
        application knew the stream. These count against the reset budget
        (MadeYouReset: a peer provoking resets is as costly as one sending them)."""
        self._charge_reset()
        self._queue_control(build_rst_stream(sid, code))
        if stream is not None:
            self._forget(stream, RESET_BY_US)
            self._events.append(ev.StreamReset(sid, code, False))
            self._cancel_if_unannounced(sid)
        else:
            self._remember_closed(sid, RESET_BY_US)

    def _cancel_if_unannounced(self, sid: int) -> None:
        """A stream reset in the batch that opened it: the application has not seen its
        request yet, and will not (see `_drop_cancelled`)."""
        if sid > self._batch_first and (sid & 1) == self._peer_parity and not self._client:
            if self._cancelled is None:
                self._cancelled = set()
            self._cancelled.add(sid)

    def _connection_error(self, code: ErrorCode, message: str) -> None:
        if self._terminated:
            return
        self._terminate()
        debug = message.encode("ascii", "replace")[:128]
        self._out += build_goaway(self._highest_peer, code, debug)
        self._events.append(ev.ConnectionTerminated(code, self._highest_peer, debug, False))

    def _terminate(self) -> None:
        """The connection is over: drop every stream (sending on them is a no-op now)."""
        self._terminated = True
        self._streams.clear()
        self._blocked.clear()
        self._hb_chunks = []

    # -- budgets ---------------------------------------------------------------------

    def _charge_reset(self) -> None:
        if not self._reset_budget.spend(self._now):
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many stream resets")

    def _charge_control(self) -> None:
        if not self._control_budget.spend(self._now):
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many control frames")

    def _queue_control(self, frame: bytes) -> None:
        """Queue a frame the peer made us send (ACK, RST_STREAM); a peer that keeps
        provoking them without reading our output is cut off."""
        self._out += frame
        pending = self._control_pending + len(frame)
        self._control_pending = pending
        if pending > self._config.max_outbound_control_bytes:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "peer is not reading")

    def _credit_connection(self, size: int) -> None:
        increment = self._recv.release(size)
        if increment:
            self._out += build_window_update(0, increment)

    # -- sending ---------------------------------------------------------------------

    def _sendable(self, stream_id: int) -> Stream | None:
        """The open stream, or None when sending on it is a harmless no-op (the stream
        was reset or closed meanwhile, or the connection is over)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            if stream.end_sent:
                raise H2UsageError(f"stream {stream_id} already ended")
            return stream
        if self._terminated or (stream_id and not self._is_idle(stream_id)):
            return None
        raise H2UsageError(f"stream {stream_id} is not open")

    def _write_header_block(self, sid: int, block: bytes, end_stream: bool) -> None:
        """HEADERS (+ CONTINUATIONs when the block exceeds the peer's frame size)."""
        out = self._out
        max_frame = self._peer_max_frame
        flags = END_STREAM if end_stream else 0
        size = len(block)
        if size <= max_frame:
            out += _pack_header((size << 8) | HEADERS, flags | END_HEADERS, sid)
            out += block
            return
        out += _pack_header((max_frame << 8) | HEADERS, flags, sid)
        out += block[:max_frame]
        pos = max_frame
        while pos < size:
            chunk = block[pos : pos + max_frame]
            pos += len(chunk)
            last = END_HEADERS if pos >= size else 0
            out += _pack_header((len(chunk) << 8) | CONTINUATION, last, sid)
            out += chunk

    def send_headers(self, stream_id: int, fields: Fields, end_stream: bool = False) -> None:
        """A header block as is (the caller supplies pseudo-headers): a 1xx or final
        response head, or (client) a request head that opens `stream_id`."""
        stream = self._streams.get(stream_id)
        if stream is None and self._client and stream_id == self._next_local:
            if not self._initiated:
                self.initiate()
            stream = self._open_local_stream(fields)
        else:
            stream = self._sendable(stream_id)
            if stream is None:
                return
            if stream.send_queue is not None:
                raise H2UsageError("headers after queued data: use send_trailers")
        self._write_header_block(stream_id, self._encoder.encode(fields), end_stream)
        # A 1xx head leaves room for the final one.
        if not (fields and fields[0][0] == b":status" and fields[0][1][:1] == b"1"):
            stream.headers_sent = True
        if end_stream:
            self._local_ended(stream)

    def send_response(self, stream_id: int, status: int, fields: Fields, body: bytes) -> None:
        """HEADERS (":status" + fields) then the body as DATA frames, END_STREAM on the
        last frame. What the windows hold back goes out later, automatically."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.headers_sent or stream.end_sent:
            stream = self._sendable(stream_id)
            if stream is None:
                return
            raise H2UsageError(f"response already started on stream {stream_id}")
        status_field = _STATUS_FIELDS.get(status)
        if status_field is None or status < 200:
            raise H2UsageError(f"invalid final status {status}")
        block = self._encoder.encode([status_field, *fields])
        stream.headers_sent = True
        out = self._out
        size = len(body)
        block_size = len(block)
        max_frame = self._peer_max_frame
        if block_size > max_frame:
            self._write_header_block(stream_id, block, not size)
            if size:
                self._send_body(stream, body, True)
            else:
                self._local_ended(stream)
            return
        if not size:
            out += _pack_header((block_size << 8) | HEADERS, END_HEADERS | END_STREAM, stream_id)
            out += block
            self._local_ended(stream)
            return
        out += _pack_header((block_size << 8) | HEADERS, END_HEADERS, stream_id)
        out += block
        if size <= max_frame and size <= stream.send_window and size <= self._send_window:
            stream.send_window -= size
            self._send_window -= size
            out += _pack_header(size << 8, END_STREAM, stream_id)
            out += body
            if stream.remote_closed and stream.inbound is None:
                # The common case, inlined: a GET answered in full is closed and forgotten.
                stream.end_sent = True
                del self._streams[stream_id]
                self._remember_closed(stream_id, CLOSED_NORMALLY)
            else:
                self._local_ended(stream)
            return
        self._send_body(stream, body, True)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Body bytes; sent now as far as the windows allow, the rest queued in order."""
        stream = self._sendable(stream_id)
        if stream is None:
            return
        if not stream.headers_sent:
            raise H2UsageError("send headers before data")
        queue = stream.send_queue
        if queue is not None:
            if queue.end_stream or queue.trailers is not None:
                raise H2UsageError(f"stream {stream_id} already ended")
            queue.append(data if isinstance(data, bytes) else bytes(data))
            queue.end_stream = end_stream
            return
        self._send_body(stream, data, end_stream)

    def send_trailers(self, stream_id: int, fields: Fields) -> None:
        """Trailer fields ending the stream, after any data still queued."""
        stream = self._sendable(stream_id)
        if stream is None:
            return
        if not stream.headers_sent:
            raise H2UsageError("send headers before trailers")
        queue = stream.send_queue
        if queue is not None:
            if queue.end_stream or queue.trailers is not None:
                raise H2UsageError(f"stream {stream_id} already ended")
            # Encoded only when written: HPACK blocks must go out in encoding order.
            queue.trailers = list(fields)
            return
        self._write_header_block(stream_id, self._encoder.encode(fields), True)
        self._local_ended(stream)

    def pending_send_bytes(self, stream_id: int) -> int:
        stream = self._streams.get(stream_id)
        return 0 if stream is None else stream.pending_bytes

    def _send_body(self, stream: Stream, data: bytes, end_stream: bool) -> None:
        """DATA frames for a stream with nothing queued; the remainder is queued."""
        sid = stream.stream_id
        out = self._out
        size = len(data)
        if not size:
            if end_stream:
                out += _pack_header(0, END_STREAM, sid)
                self._local_ended(stream)
            return
        max_frame = self._peer_max_frame
        allowed = min(stream.send_window, self._send_window)
        view = memoryview(data)
        pos = 0
        while pos < size and allowed > 0:
            chunk = min(size - pos, allowed, max_frame)
            end = pos + chunk
            flags = END_STREAM if end_stream and end == size else 0
            out += _pack_header(chunk << 8, flags, sid)
            out += view[pos:end]
            pos = end
            allowed -= chunk
        stream.send_window -= pos
        self._send_window -= pos
        if pos == size:
            if end_stream:
                self._local_ended(stream)
            return
        queue = SendQueue()
        # A mutable buffer could change under us while queued: keep a copy of it.
        queue.append(view[pos:] if isinstance(data, bytes) else bytes(view[pos:]))
        queue.end_stream = end_stream
        stream.send_queue = queue
        if not self._blocked:
            self._blocked_since = self._now
        self._blocked[sid] = stream

    def _drain(self, stream: Stream, quantum: int) -> bool:
        """Write up to `quantum` queued octets of one stream; True if anything went out."""
        queue = stream.send_queue
        if queue is None:
            return False
        sid = stream.stream_id
        out = self._out
        max_frame = self._peer_max_frame
        progress = False
        ended = False
        sent = 0
        while queue.size and sent < quantum:
            allowed = min(stream.send_window, self._send_window, max_frame, quantum - sent)
            if allowed <= 0:
                break
            chunk = queue.take(allowed)
            size = len(chunk)
            flags = 0
            if not queue.size and queue.end_stream and queue.trailers is None:
                flags = END_STREAM
                ended = True
            out += _pack_header(size << 8, flags, sid)
            out += chunk
            stream.send_window -= size
            self._send_window -= size
            sent += size
            progress = True
        if queue.size:
            return progress
        # Everything queued is out: what ends the stream follows.
        stream.send_queue = None
        del self._blocked[sid]
        if queue.trailers is not None:
            self._write_header_block(sid, self._encoder.encode(queue.trailers), True)
            self._local_ended(stream)
        elif queue.end_stream:
            if not ended:
                out += _pack_header(0, END_STREAM, sid)
            self._local_ended(stream)
        return True

    def _flush_blocked(self) -> None:
        """Round-robin over streams with queued data, one frame each per round."""
        blocked = self._blocked
        quantum = self._peer_max_frame
        while blocked:
            progress = False
            for stream in list(blocked.values()):
                if self._drain(stream, quantum):
                    progress = True
            if not progress:
                break
            self._blocked_since = self._now

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
        if increment and not stream.remote_closed:
            self._out += build_window_update(stream_id, increment)
        self._credit_connection(size)

    # -- shutdown --------------------------------------------------------------------

    def start_graceful_shutdown(self) -> None:
        """GOAWAY(2^31-1, NO_ERROR) and a PING; the final GOAWAY with the last stream
        id we processed follows on the PING ACK (or `finish_graceful_shutdown`)."""
        if self._terminated or self._goaway_last is not None:
            return
        self._goaway_last = _MAX_STREAM_ID
        self._shutdown_ping = _SHUTDOWN_PING
        self._out += build_goaway(_MAX_STREAM_ID, ErrorCode.NO_ERROR)
        self._out += build_ping(_SHUTDOWN_PING)

    def finish_graceful_shutdown(self) -> None:
        if self._terminated or self._goaway_final:
            return
        self._shutdown_ping = None
        self._goaway_final = True
        self._goaway_last = self._highest_peer
        self._out += build_goaway(self._highest_peer, ErrorCode.NO_ERROR)

    def close(self, error_code: ErrorCode = ErrorCode.NO_ERROR, debug: bytes = b"") -> None:
        """GOAWAY now; the connection is over (further input is ignored)."""
        if self._terminated:
            return
        self._terminate()
        self._out += build_goaway(self._highest_peer, error_code, debug)

    # -- client role -----------------------------------------------------------------

    def get_next_stream_id(self) -> int:
        if self._next_local > _MAX_STREAM_ID:
            raise H2UsageError("stream ids exhausted: open a new connection")
        return self._next_local

    def _open_local_stream(self, fields: Fields) -> Stream:
        if not self._client:
            raise H2UsageError("only a client opens streams")
        if self._terminated or self._goaway_received:
            raise H2UsageError("the connection is closing")
        if len(self._streams) >= self._peer.max_concurrent_streams:
            raise H2UsageError("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached")
        sid = self.get_next_stream_id()
        self._next_local = sid + 2
        self._highest_local = sid
        stream = Stream(sid, self._peer_initial_window)
        for name, value in fields:
            if name == b":method":
                stream.is_head_request = value == b"HEAD"
                break
        self._streams[sid] = stream
        return stream

    def send_request(self, fields: Fields, body: bytes = b"", end_stream: bool = True) -> int:
        """Open the next stream with `fields` (pseudo-headers first); returns its id."""
        if not self._initiated:
            self.initiate()
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
_CONTROL_HANDLERS: dict[int, _FrameHandler] = {
    SETTINGS: H2Connection._on_settings,
    WINDOW_UPDATE: H2Connection._on_window_update,
    PING: H2Connection._on_ping,
    RST_STREAM: H2Connection._on_rst_stream,
    PRIORITY: H2Connection._on_priority,
    GOAWAY: H2Connection._on_goaway,
    PUSH_PROMISE: H2Connection._on_push_promise,
    CONTINUATION: H2Connection._on_stray_continuation,
}
