"""Stream ids, open streams and the memory of recently closed ones (RFC 9113 §5.1).

One model answers "what state is stream id N in?" (`id_state`): the open-stream
dict for live streams, the highest ids for idle ones, a bounded dict of recent
closes for how a stream ended, and our GOAWAY's last id for refused ones. Closed
streams leave no per-stream object behind. The legal moves are the tables in
`stream.py`; this class applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice
from typing import Final

from . import events as ev
from .errors import ErrorCode, H2ConnectionError, H2UsageError
from .frames import build_rst_stream
from .state import ConnectionState
from .stream import (
    CLOSED,
    FORGOTTEN,
    FRAME_RULES,
    IDLE,
    RECV_END_STREAM,
    REFUSED,
    RESET_BY_US,
    SEND_END_STREAM,
    TRANSITIONS,
    Stream,
    new_stream,
)

__all__ = ["MAX_STREAM_ID", "StreamIds"]

MAX_STREAM_ID: Final = (1 << 31) - 1


class StreamIds(ConnectionState):
    __slots__ = ()

    def _is_idle(self, sid: int) -> bool:
        if (sid & 1) == self._peer_parity:
            return sid > self._highest_peer
        return sid > self._highest_local

    def id_state(self, sid: int) -> int:
        """The state of stream id `sid` (a constant of `stream.py`)."""
        stream = self._streams.get(sid)
        if stream is not None:
            return stream.state
        if self._is_idle(sid):
            return IDLE
        goaway_last = self._goaway_last
        if goaway_last is not None and (sid & 1) == self._peer_parity and sid > goaway_last:
            return REFUSED
        return self._recent.get(sid, FORGOTTEN)

    def _apply_frame_rule(self, frame_type: int, sid: int) -> None:
        """A frame of `frame_type` on `sid`, which has no open stream: drop it, or
        raise the connection error / queue the stream error `FRAME_RULES` says."""
        rule = FRAME_RULES[(frame_type, self.id_state(sid))]
        code = rule.error
        if code is None:
            return
        if rule.connection_error:
            raise H2ConnectionError(code, rule.reason)
        self._stream_error(None, sid, code)

    def get_next_stream_id(self) -> int:
        if self._next_local > MAX_STREAM_ID:
            raise H2UsageError("stream ids exhausted: open a new connection")
        return self._next_local

    def _open_local_stream(self, fields: Sequence[tuple[bytes, bytes]]) -> Stream:
        if not self._client:
            raise H2UsageError("only a client opens streams")
        if self._terminated or self._goaway_received:
            raise H2UsageError("the connection is closing")
        # The server's limit counts our requests only, not the streams it pushed (§5.1.2).
        if len(self._streams) - self._pushed_live >= self._peer.max_concurrent_streams:
            raise H2UsageError("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is reached")
        sid = self.get_next_stream_id()
        self._next_local = sid + 2
        self._highest_local = sid
        stream = new_stream(sid, self._peer_initial_window)
        for name, value in fields:
            if name == b":method":
                stream.is_head_request = value == b"HEAD"
                break
        self._streams[sid] = stream
        return stream

    def _remember_closed(self, sid: int, how: int) -> None:
        # Every closed stream passes here (a GET answered in full: once per request, in
        # send_response's inline copy of these lines), so the common case is a length, a
        # comparison and a store; the bound is kept in `_make_recent_room`, a third of
        # the closes at a time.
        recent = self._recent
        if len(recent) >= self._recent_limit:
            recent = self._make_recent_room()
        recent[sid] = how

    def _make_recent_room(self) -> dict[int, int]:
        """Keep the newest `_recent_size` closes, with room for a third more before the
        next trim: the dict stays within the table size of `_recent_size` entries (256
        ids fill 9.3 KB up to 341; a ring of ids beside it would add 2 KB)."""
        size = self._recent_size
        recent = self._recent
        if self._recent_limit:
            recent = dict(islice(recent.items(), len(recent) - size, None))
        else:
            recent = {}  # the first close: the shared empty dict is never stored into
        self._recent = recent
        self._recent_limit = size + size // 3
        return recent

    def _forget(self, stream: Stream, how: int) -> None:
        """`stream` is closed (`how`: CLOSED, RESET_BY_PEER or RESET_BY_US)."""
        sid = stream.stream_id
        del self._streams[sid]
        if self._pushed_live and not sid & 1:
            self._pushed_live -= 1
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
        state = TRANSITIONS[(stream.state, RECV_END_STREAM)]
        if state == CLOSED:
            self._forget(stream, CLOSED)
        else:
            stream.state = state

    def _local_ended(self, stream: Stream) -> None:
        state = TRANSITIONS[(stream.state, SEND_END_STREAM)]
        if state == CLOSED:
            self._forget(stream, CLOSED)
        else:
            stream.state = state

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
        request yet, and will not (see `H2Connection._drop_cancelled`)."""
        if sid > self._batch_first and (sid & 1) == self._peer_parity and not self._client:
            if self._cancelled is None:
                self._cancelled = set()
            self._cancelled.add(sid)
