"""Stream states (RFC 9113 §5.1) as one table of data, and the per-stream object.

A stream id is in exactly one state. Open streams (the only ones with a `Stream`
object) carry it in `Stream.state`; every other id gets its state from the
connection's id bookkeeping (`stream_ids.StreamIds.id_state`): idle above the
highest ids seen, a recently closed one from the memory of recent closes (one
dict, trimmed a third at a time: `StreamIds._remember_closed`), and so on.

`TRANSITIONS` says how an open stream moves on END_STREAM and RST_STREAM, either way,
and how a pushed stream (RFC 9113 §8.4) leaves "reserved" with its response HEADERS;
`FRAME_RULES` says what a frame that arrives on an id without an open stream means,
and what the frames a reserved stream must never get mean.
A pair missing from `TRANSITIONS` is not a legal move. Hot paths test the two
states they care about inline; the tables are the reference they follow.

Rarely needed parts of a `Stream` are allocated lazily: `inbound` (receive window)
on the first DATA frame, `send_queue` when flow control holds back our data.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .errors import ErrorCode
from .frames import DATA, HEADERS, RST_STREAM, WINDOW_UPDATE
from .windows import ReceiveWindow

__all__ = [
    "CLOSED",
    "FORGOTTEN",
    "FRAME_RULES",
    "HALF_CLOSED_LOCAL",
    "HALF_CLOSED_REMOTE",
    "IDLE",
    "OPEN",
    "RECV_END_STREAM",
    "RECV_HEADERS",
    "RECV_RST_STREAM",
    "REFUSED",
    "RESERVED_LOCAL",
    "RESERVED_REMOTE",
    "RESET_BY_PEER",
    "RESET_BY_US",
    "SEND_END_STREAM",
    "SEND_HEADERS",
    "SEND_RST_STREAM",
    "STATE_NAMES",
    "TRANSITIONS",
    "FrameRule",
    "SendQueue",
    "Stream",
    "new_stream",
]

# -- states (plain ints: they are compared on every frame) -------------------------------

IDLE: Final = 0
OPEN: Final = 1
HALF_CLOSED_REMOTE: Final = 2  # the peer sent END_STREAM
HALF_CLOSED_LOCAL: Final = 3  # our END_STREAM is in the output
# Closed states, remembered for a while (the dict of recent closes, see
# `StreamIds._remember_closed`) to pick the right error for frames that were in flight:
CLOSED: Final = 4  # both sides ended normally
RESET_BY_PEER: Final = 5
RESET_BY_US: Final = 6
# Closed long ago, trimmed from the recent closes: only "it is below the highest id"
# is known.
FORGOTTEN: Final = 7
# A peer stream above the last id of our GOAWAY: never processed, frames are dropped.
REFUSED: Final = 8
# Promised by a PUSH_PROMISE, its response HEADERS not yet sent (local: we pushed it) or
# not yet received (remote: the server pushed it to us). Both live in the open-stream
# dict, and count against the pushing side's limit of pushed streams. Above every other
# live state, so that `state > HALF_CLOSED_REMOTE` picks out "not a plain open stream"
# in one comparison on the response path.
RESERVED_LOCAL: Final = 9
RESERVED_REMOTE: Final = 10

STATE_NAMES: Final = {
    IDLE: "idle",
    OPEN: "open",
    HALF_CLOSED_REMOTE: "half-closed (remote)",
    HALF_CLOSED_LOCAL: "half-closed (local)",
    CLOSED: "closed",
    RESET_BY_PEER: "closed (reset by peer)",
    RESET_BY_US: "closed (reset by us)",
    FORGOTTEN: "closed (forgotten)",
    REFUSED: "refused (after GOAWAY)",
    RESERVED_LOCAL: "reserved (local)",
    RESERVED_REMOTE: "reserved (remote)",
}

# -- transitions of an open stream -------------------------------------------------------

RECV_END_STREAM: Final = 1
SEND_END_STREAM: Final = 2
RECV_RST_STREAM: Final = 3
SEND_RST_STREAM: Final = 4
SEND_HEADERS: Final = 5  # the response head of a pushed stream
RECV_HEADERS: Final = 6

TRANSITIONS: Final[dict[tuple[int, int], int]] = {
    (OPEN, RECV_END_STREAM): HALF_CLOSED_REMOTE,
    (OPEN, SEND_END_STREAM): HALF_CLOSED_LOCAL,
    (HALF_CLOSED_LOCAL, RECV_END_STREAM): CLOSED,
    (HALF_CLOSED_REMOTE, SEND_END_STREAM): CLOSED,
    (OPEN, RECV_RST_STREAM): RESET_BY_PEER,
    (HALF_CLOSED_LOCAL, RECV_RST_STREAM): RESET_BY_PEER,
    (HALF_CLOSED_REMOTE, RECV_RST_STREAM): RESET_BY_PEER,
    (OPEN, SEND_RST_STREAM): RESET_BY_US,
    (HALF_CLOSED_LOCAL, SEND_RST_STREAM): RESET_BY_US,
    (HALF_CLOSED_REMOTE, SEND_RST_STREAM): RESET_BY_US,
    # Server push (§5.1, §8.4): a promised stream never carries a request body, so its
    # response HEADERS take it straight to the half-closed state of the side that waits.
    (RESERVED_LOCAL, SEND_HEADERS): HALF_CLOSED_REMOTE,
    (RESERVED_REMOTE, RECV_HEADERS): HALF_CLOSED_LOCAL,
    (RESERVED_LOCAL, RECV_RST_STREAM): RESET_BY_PEER,
    (RESERVED_LOCAL, SEND_RST_STREAM): RESET_BY_US,
    (RESERVED_REMOTE, RECV_RST_STREAM): RESET_BY_PEER,
    (RESERVED_REMOTE, SEND_RST_STREAM): RESET_BY_US,
}

# -- frames on an id without an open stream ----------------------------------------------


class FrameRule:
    """What a frame on such an id means: nothing (`error` None: the frame is dropped),
    a stream error (RST_STREAM) or a connection error (GOAWAY)."""

    __slots__ = ("connection_error", "error", "reason")

    def __init__(self, error: ErrorCode | None, connection_error: bool, reason: str) -> None:
        self.error = error
        self.connection_error = connection_error
        self.reason = reason


_DROP: Final = FrameRule(None, False, "")
_IDLE_ID: Final = FrameRule(ErrorCode.PROTOCOL_ERROR, True, "frame on an idle stream")

# (frame type, state) -> rule. PRIORITY may name any stream and is not listed (§5.1).
# Dropped frames were in flight when we reset the stream or sent GOAWAY (§5.1, §6.8).
FRAME_RULES: Final[dict[tuple[int, int], FrameRule]] = {
    (HEADERS, IDLE): FrameRule(ErrorCode.PROTOCOL_ERROR, True, "HEADERS on an unusable stream id"),
    (HEADERS, CLOSED): FrameRule(ErrorCode.STREAM_CLOSED, True, "HEADERS on a closed stream"),
    (HEADERS, RESET_BY_PEER): FrameRule(
        ErrorCode.STREAM_CLOSED, True, "HEADERS on a closed stream"
    ),
    (HEADERS, RESET_BY_US): _DROP,
    (HEADERS, REFUSED): _DROP,
    (HEADERS, FORGOTTEN): FrameRule(
        ErrorCode.PROTOCOL_ERROR, True, "stream id reused or out of order"
    ),
    (DATA, IDLE): FrameRule(ErrorCode.PROTOCOL_ERROR, True, "DATA on an idle stream"),
    (DATA, CLOSED): FrameRule(ErrorCode.STREAM_CLOSED, True, "DATA after END_STREAM"),
    (DATA, RESET_BY_PEER): FrameRule(ErrorCode.STREAM_CLOSED, False, "DATA on a closed stream"),
    (DATA, RESET_BY_US): _DROP,
    (DATA, REFUSED): _DROP,
    (DATA, FORGOTTEN): FrameRule(ErrorCode.STREAM_CLOSED, False, "DATA on a closed stream"),
    (WINDOW_UPDATE, IDLE): FrameRule(
        ErrorCode.PROTOCOL_ERROR, True, "WINDOW_UPDATE on an idle stream"
    ),
    (RST_STREAM, IDLE): FrameRule(ErrorCode.PROTOCOL_ERROR, True, "RST_STREAM on an idle stream"),
    # A reserved stream takes only RST_STREAM, PRIORITY and WINDOW_UPDATE, and (remote)
    # the pushed response's HEADERS (§5.1).
    (HEADERS, RESERVED_LOCAL): FrameRule(
        ErrorCode.PROTOCOL_ERROR, True, "HEADERS on a stream we pushed"
    ),
    (DATA, RESERVED_LOCAL): FrameRule(ErrorCode.PROTOCOL_ERROR, True, "DATA on a stream we pushed"),
    (DATA, RESERVED_REMOTE): FrameRule(
        ErrorCode.PROTOCOL_ERROR, True, "DATA on a pushed stream before its HEADERS"
    ),
}
# A closed stream may still get WINDOW_UPDATE or RST_STREAM (§5.1): dropped.
for _frame_type in (WINDOW_UPDATE, RST_STREAM):
    for _state in (CLOSED, RESET_BY_PEER, RESET_BY_US, REFUSED, FORGOTTEN):
        FRAME_RULES[(_frame_type, _state)] = _DROP
del _frame_type, _state


class SendQueue:
    """Data (and what follows it) that flow control did not let out yet."""

    __slots__ = ("chunks", "end_stream", "size", "trailers")

    def __init__(self) -> None:
        self.chunks: deque[memoryview] = deque()
        self.size = 0
        self.end_stream = False
        self.trailers: list[tuple[bytes, bytes]] | None = None

    def append(self, data: bytes | memoryview) -> None:
        if data:
            self.chunks.append(memoryview(data).cast("B"))
            self.size += len(data)

    def take(self, limit: int) -> bytes | memoryview:
        """Up to `limit` octets from the front (a view when one chunk suffices)."""
        chunks = self.chunks
        first = chunks[0]
        if len(first) > limit:
            chunks[0] = first[limit:]
            self.size -= limit
            return first[:limit]
        if len(first) == limit or len(chunks) == 1:
            chunks.popleft()
            self.size -= len(first)
            return first
        parts = []
        taken = 0
        while chunks and taken < limit:
            chunk = chunks[0]
            room = limit - taken
            if len(chunk) > room:
                parts.append(chunk[:room])
                chunks[0] = chunk[room:]
                taken = limit
            else:
                parts.append(chunks.popleft())
                taken += len(chunk)
        self.size -= taken
        return b"".join(parts)


class Stream:
    """An open stream: `state` is OPEN, HALF_CLOSED_REMOTE or HALF_CLOSED_LOCAL (or, for a
    pushed stream before its response HEADERS, RESERVED_LOCAL or RESERVED_REMOTE).
    Once closed the connection drops the object and remembers only how it ended."""

    __slots__ = (
        "content_length",
        "head_received",
        "headers_sent",
        "inbound",
        "is_head_request",
        "received",
        "send_queue",
        "send_window",
        "state",
        "stream_id",
    )

    stream_id: int
    send_window: int
    state: int
    # Server: the request head arrived. Client: the final response head arrived.
    head_received: bool
    headers_sent: bool
    content_length: int | None
    received: int
    inbound: ReceiveWindow | None
    send_queue: SendQueue | None
    is_head_request: bool

    # No __init__: `new_stream` makes each one. On CPython 3.11 calling a class that has
    # a Python __init__ costs ~900 instructions more than one without (the call of
    # __init__ is not inlined), and a server makes a stream per request.

    @property
    def pending_bytes(self) -> int:
        queue = self.send_queue
        return 0 if queue is None else queue.size

    def __repr__(self) -> str:
        state = STATE_NAMES[self.state]
        return f"<Stream {self.stream_id} {state} send_window={self.send_window}>"


def new_stream(
    stream_id: int,
    send_window: int,
    state: int = OPEN,
    content_length: int | None = None,
    head_received: bool = False,
) -> Stream:
    """An open stream (or a reserved one: `state`), nothing sent or received on it yet
    unless `head_received`."""
    stream = Stream()
    stream.stream_id = stream_id
    stream.send_window = send_window
    stream.state = state
    stream.head_received = head_received
    stream.headers_sent = False
    stream.content_length = content_length
    stream.received = 0
    stream.inbound = None
    stream.send_queue = None
    stream.is_head_request = False
    return stream
