"""Per-stream state (RFC 9113 §5.1), kept small: one object per open stream.

The five RFC states are two booleans here: `remote_closed` (the peer sent
END_STREAM) and `end_sent` (our END_STREAM went into the output buffer).
open = neither, half-closed (remote) = remote_closed only, half-closed (local) =
end_sent only, closed = both, at which point the connection forgets the object.
Idle streams have no object at all, and closed ones are not kept either: the
connection remembers only the highest stream ids and a short list of recent closes.

Rarely needed parts are allocated lazily: `inbound` (receive window) on the first
DATA frame, `send_queue` when flow control holds back our data.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from .windows import ReceiveWindow

__all__ = ["CLOSED_NORMALLY", "RESET_BY_PEER", "RESET_BY_US", "SendQueue", "Stream"]

# How a stream ended; remembered for a while to choose the right error for late frames.
CLOSED_NORMALLY: Final = 1
RESET_BY_PEER: Final = 2
RESET_BY_US: Final = 3


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
    __slots__ = (
        "content_length",
        "end_sent",
        "head_received",
        "headers_sent",
        "inbound",
        "is_head_request",
        "received",
        "remote_closed",
        "send_queue",
        "send_window",
        "stream_id",
    )

    def __init__(
        self,
        stream_id: int,
        send_window: int,
        remote_closed: bool = False,
        content_length: int | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.send_window = send_window
        self.remote_closed = remote_closed
        self.end_sent = False
        # Server: the request head arrived. Client: the final response head arrived.
        self.head_received = False
        self.headers_sent = False
        self.content_length = content_length
        self.received = 0
        self.inbound: ReceiveWindow | None = None
        self.send_queue: SendQueue | None = None
        self.is_head_request = False

    @property
    def state(self) -> str:
        if self.remote_closed:
            return "closed" if self.end_sent else "half-closed (remote)"
        return "half-closed (local)" if self.end_sent else "open"

    @property
    def pending_bytes(self) -> int:
        queue = self.send_queue
        return 0 if queue is None else queue.size

    def __repr__(self) -> str:
        return f"<Stream {self.stream_id} {self.state} send_window={self.send_window}>"
