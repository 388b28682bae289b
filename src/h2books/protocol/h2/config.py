"""`H2Config`: the limits, budgets and timeouts of one HTTP/2 connection core."""

from __future__ import annotations

from dataclasses import dataclass

from .settings import DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT, MAX_WINDOW_SIZE

__all__ = ["H2Config"]


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
    # Fields per header list, whatever their size: ~2,000 one-octet HPACK references to
    # one table entry stay under max_header_list_size and still make 2,000 list entries
    # held for as long as the stream lives (the 2026 "HTTP/2 Bomb"). A request over it
    # gets a 431, as one over max_header_list_size does.
    max_header_count: int = 100
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
    # Deadlines in seconds (see `H2Connection.get_timer`); None turns a rule off.
    # Server: the client preface and its first SETTINGS must arrive within this.
    preface_timeout: float | None = None
    # A request head (header block or a frame of one) may take this long to arrive.
    request_head_timeout: float | None = None
    # No open stream and no activity for this long: GOAWAY and a normal close.
    idle_timeout: float | None = None
    # Streams open but nothing read or handed out for this long, or our output held
    # behind a shut flow-control window for this long: GOAWAY and abort.
    stall_timeout: float | None = None
    # Graceful shutdown: the final GOAWAY goes out at the latest this long after the
    # first one, if the peer does not answer our PING sooner.
    shutdown_grace: float | None = 2.0
    # Server: advertise SETTINGS_ENABLE_CONNECT_PROTOCOL=1 and accept RFC 8441 extended
    # CONNECT requests (:protocol, WebSockets over HTTP/2). Ignored on the client side.
    enable_connect_protocol: bool = True
    # Server push (RFC 9113 §8.4), off by default. Server: `push_promise` may reserve
    # streams (only while the client's SETTINGS_ENABLE_PUSH is 1, never more pushed
    # streams at once than the client's SETTINGS_MAX_CONCURRENT_STREAMS nor than our own
    # max_concurrent_streams, never after a GOAWAY either way; pushes take no request
    # slot, RFC 9113 §5.1.2). Client: announce
    # SETTINGS_ENABLE_PUSH=1 and accept PUSH_PROMISE, up to max_concurrent_streams pushed
    # streams at once; off, a PUSH_PROMISE is a connection error (we announced 0).
    enable_push: bool = False

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
        for name in (
            "preface_timeout",
            "request_head_timeout",
            "idle_timeout",
            "stall_timeout",
            "shutdown_grace",
        ):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be None or >= 0 seconds")
