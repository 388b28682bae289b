"""The state every part of the HTTP/2 core shares, and the helpers they all use.

`H2Connection` is assembled from one class per job, stacked in this order:

    ConnectionState (state.py)   fields, output, budgets, connection errors
    StreamIds (stream_ids.py)    stream ids, open streams, recently closed streams
    OutboundScheduler (scheduler.py)  HEADERS and DATA within the windows, trailers
    HeadHandler (heads.py)       a complete header block: request, response, trailers
    PushHandler (push.py)        server push: PUSH_PROMISE out (server) and in (client)
    FrameReader (framer.py)      preface, frame limits, partial frames, CONTINUATIONs
    H2Connection (connection.py) frame dispatch, timers, shutdown, the public API

They share one object (and one `__slots__`, declared here) rather than holding one
another: every frame touches fields of several jobs, and an attribute reached
through another object would cost each of those touches a second lookup.
"""

from __future__ import annotations

from typing import Final

from h2books.protocol.hpack import Decoder, Encoder

from . import events as ev
from .budget import TokenBucket
from .config import H2Config
from .errors import ErrorCode, H2ConnectionError
from .frames import build_goaway, build_window_update
from .settings import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFAULT_INITIAL_WINDOW_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    LocalSettings,
    PeerSettings,
)
from .stream import Stream
from .windows import ReceiveWindow

__all__ = ["ConnectionState"]

_RECENT_MIN: Final = 32
_RECENT_MAX: Final = 256

# Shared empty containers for what an idle connection never fills: each is replaced by
# one of the connection's own before anything is added (~180 B less per idle connection).
# Never append to or store into these.
NO_CHUNKS: Final[list[bytes]] = []
NO_RECENT_STREAMS: Final[dict[int, int]] = {}


class ConnectionState:
    __slots__ = (
        "_awaiting_settings",
        "_batch_first",
        "_blocked",
        "_blocked_since",
        "_cancelled",
        "_client",
        "_config",
        "_content_received",
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
        "_hb_promised",
        "_hb_sid",
        "_hb_size",
        "_head_since",
        "_highest_local",
        "_highest_peer",
        "_inbuf",
        "_initiated",
        "_last_activity",
        "_local",
        "_local_initial_window",
        "_max_block_bytes",
        "_max_fields",
        "_max_frame_in",
        "_max_streams",
        "_need",
        "_next_local",
        "_now",
        "_out",
        "_output_taken",
        "_peer",
        "_peer_initial_window",
        "_peer_max_frame",
        "_peer_parity",
        "_pieces",
        "_preface_pending",
        "_push_credit",
        "_pushed_live",
        "_recent",
        "_recent_limit",
        "_recent_size",
        "_recv",
        "_reset_budget",
        "_send_window",
        "_shutdown_deadline",
        "_shutdown_ping",
        "_started",
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
        # Output queued before `_out` when big payloads go out without a copy (lazy).
        self._pieces: list[bytes | memoryview] | None = None
        self._inbuf = bytearray()
        self._need = 0
        self._initiated = False
        self._preface_pending = not cfg.client_side
        self._awaiting_settings = True
        self._terminated = False
        self._events: list[ev.Event] = []

        # Clocks: all of them are `now` values given by the caller.
        self._now = 0.0
        self._started = 0.0
        self._last_activity = 0.0
        self._output_taken = False  # data_to_send handed out bytes since the last `now`
        self._head_since: float | None = None  # a request head is arriving since
        self._shutdown_deadline: float | None = None

        self._content_received = 0  # octets of DATA payloads, less padding (wire reports)
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
        # How recently closed streams ended (stream id -> how), oldest first: at least the
        # last `_recent_size` closes, at most `_recent_limit` (see `_remember_closed`).
        # Allocated with the first closed stream: an idle connection never needs it (the
        # shared empty one is only ever read; a limit of 0 makes the first close allocate).
        self._recent: dict[int, int] = NO_RECENT_STREAMS
        self._recent_size = min(_RECENT_MAX, max(_RECENT_MIN, cfg.max_concurrent_streams))
        self._recent_limit = 0

        self._decoder = Decoder(
            max_table_size=DEFAULT_HEADER_TABLE_SIZE,
            max_header_list_size=cfg.max_header_list_size,
            count_totals=cfg.client_side,  # for the client's wire reports
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
        self._max_fields = cfg.max_header_count
        self._peer_max_frame = DEFAULT_MAX_FRAME_SIZE
        self._peer_initial_window = DEFAULT_INITIAL_WINDOW_SIZE
        self._send_window = DEFAULT_INITIAL_WINDOW_SIZE
        self._recv = ReceiveWindow(max(DEFAULT_INITIAL_WINDOW_SIZE, cfg.connection_window_size))

        self._hb_sid = 0
        self._hb_end_stream = False
        self._hb_promised = 0  # the promised stream id while a PUSH_PROMISE block arrives
        self._hb_bad_priority = False
        self._hb_chunks: list[bytes] = NO_CHUNKS
        self._hb_count = 0
        self._hb_size = 0

        self._goaway_last: int | None = None
        self._goaway_final = False
        self._goaway_received = False
        self._shutdown_ping: bytes | None = None

        self._reset_budget = TokenBucket(cfg.reset_budget, cfg.reset_refill_per_second)
        self._control_budget = TokenBucket(cfg.control_frame_budget, cfg.control_refill_per_second)
        self._control_pending = 0
        # Server: one RST_STREAM free of the budgets per stream we pushed (a client that
        # cancels our pushes, even after they ended, costs it nothing: we chose to push).
        self._push_credit = 0
        # Live pushed streams (even ids: ours as a server, the peer's as a client), so each
        # side's SETTINGS_MAX_CONCURRENT_STREAMS is checked against the streams it limits
        # (§5.1.2): requests are `len(self._streams) - self._pushed_live`.
        self._pushed_live = 0

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

    # -- the end ---------------------------------------------------------------------

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
        self._pushed_live = 0
        self._blocked.clear()
        self._hb_chunks = NO_CHUNKS
        self._hb_sid = 0
        self._head_since = None
        self._shutdown_deadline = None
