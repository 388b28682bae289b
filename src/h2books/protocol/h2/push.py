"""Server push (RFC 9113 §8.4): PUSH_PROMISE out (server role) and in (client role).

Server: `push_promise(parent, fields)` reserves the next even stream id on an open
request stream and writes the promise (HEADERS-like: CONTINUATIONs on the parent stream
when the block is bigger than the peer's frame size). The promised stream starts in
"reserved (local)"; its response HEADERS take it to "half-closed (remote)" and its
END_STREAM closes it, through the scheduler like any response (the moves are in
`stream.TRANSITIONS`). A promise is refused (0) unless every bound holds:

- push is on (`H2Config.enable_push`) and the client's SETTINGS_ENABLE_PUSH is 1;
- no GOAWAY was sent or received;
- the parent is a client stream whose response is not ended;
- fewer pushed streams are live than the client's SETTINGS_MAX_CONCURRENT_STREAMS and
  our own `max_concurrent_streams` (reserved streams count too: a client that has not
  read our promises yet holds them).

What counts where (RFC 9113 §5.1.2: a SETTINGS_MAX_CONCURRENT_STREAMS limits the streams
its sender's PEER opens): our pushes count against the client's limit, its requests
against ours, never across (`_pushed_live` counts the even ids, live requests are the
rest). The RFC leaves reserved streams out of the count; we count them, on both sides:
stricter than the RFC asks (a server may always push less, a client may refuse any
push), and it bounds what a peer's unread promises can hold. So a server holds at most
`max_concurrent_streams` requests plus as many pushes.

A client may reset any pushed stream: its queued data is dropped with the stream, and
the RST_STREAM is free of the reset and control budgets (one free reset per push).

Client: with `enable_push` a PUSH_PROMISE on one of our open requests reserves the
promised id ("reserved (remote)") and yields `PushPromiseReceived`; its response comes as
on any stream. A promise of something other than a GET or HEAD without a body, or beyond
our `max_concurrent_streams` pushed streams (reserved ones included; our requests are
limited apart, by the server's setting), is refused with RST_STREAM on the promised
id; one for a request we had reset already is cancelled the same way (§5.1, "closed").
"""

from __future__ import annotations

from typing import Final

from h2books.protocol.hpack import HPACKError

from . import events as ev
from .errors import ErrorCode, H2ConnectionError, H2UsageError
from .frames import CONTINUATION, END_HEADERS, FRAME_HEADER, PADDED, PUSH_PROMISE, parse_u31
from .heads import HeadHandler, raise_unless_too_large
from .scheduler import Fields
from .stream import (
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    OPEN,
    RESERVED_LOCAL,
    RESERVED_REMOTE,
    RESET_BY_US,
    new_stream,
)
from .stream_ids import MAX_STREAM_ID
from .validation import MalformedHeaders, validate_request

__all__ = ["PushHandler"]

_pack_header = FRAME_HEADER.pack
_PROMISE_ID_SIZE: Final = 4
# What a server may promise (§8.4: safe, cacheable, no request content).
_PUSHABLE_METHODS: Final = frozenset({b"GET", b"HEAD"})


class PushHandler(HeadHandler):
    __slots__ = ()

    # -- server: promising -----------------------------------------------------------

    @property
    def can_push(self) -> bool:
        """Whether a promise could go out now, whatever the parent stream (see the module
        docstring for the bounds)."""
        return (
            not self._client
            and self._config.enable_push
            and self._peer.enable_push == 1
            and not self._terminated
            and not self._goaway_received
            and self._goaway_last is None
            and self._next_local <= MAX_STREAM_ID
            and self._pushed_live
            < min(self._peer.max_concurrent_streams, self._config.max_concurrent_streams)
        )

    def push_promise(self, parent_stream_id: int, fields: Fields) -> int:
        """Promise the response to the request `fields` (pseudo-headers first: :method,
        :scheme, :authority, :path) on the open client stream `parent_stream_id`; returns
        the promised (even) stream id, to answer with `send_response` / `send_headers`, or
        0 when a bound refuses it (nothing is sent then)."""
        if self._client:
            raise H2UsageError("only a server pushes")
        if not self.can_push:
            return 0
        parent = self._streams.get(parent_stream_id)
        if (
            parent is None
            or not parent_stream_id & 1
            or (parent.state != OPEN and parent.state != HALF_CLOSED_REMOTE)
        ):
            return 0
        queue = parent.send_queue
        if queue is not None and (queue.end_stream or queue.trailers is not None):
            return 0  # the response is ended, only held back by flow control
        promised = self._next_local
        self._next_local = promised + 2
        self._highest_local = promised
        self._write_push_promise(parent_stream_id, promised, self._encoder.encode(fields))
        stream = new_stream(promised, self._peer_initial_window, RESERVED_LOCAL)
        for name, value in fields:
            if name == b":method":
                stream.is_head_request = value == b"HEAD"
                break
        self._streams[promised] = stream
        self._pushed_live += 1
        self._push_credit += 1
        return promised

    def _write_push_promise(self, parent: int, promised: int, block: bytes) -> None:
        """PUSH_PROMISE (+ CONTINUATIONs on the parent stream when the block is bigger
        than the peer's frame size allows)."""
        out = self._out
        max_frame = self._peer_max_frame
        room = max_frame - _PROMISE_ID_SIZE
        size = len(block)
        first = min(size, room)
        flags = END_HEADERS if size <= room else 0
        out += _pack_header(((first + _PROMISE_ID_SIZE) << 8) | PUSH_PROMISE, flags, parent)
        out += promised.to_bytes(_PROMISE_ID_SIZE, "big")
        out += block[:first]
        pos = first
        while pos < size:
            chunk = block[pos : pos + max_frame]
            pos += len(chunk)
            out += _pack_header(
                (len(chunk) << 8) | CONTINUATION, END_HEADERS if pos >= size else 0, parent
            )
            out += chunk

    def _spend_push_credit(self, sid: int) -> bool:
        """A RST_STREAM on `sid`: True if it cancels one of our pushes, which costs the
        peer nothing (one free reset per stream we pushed)."""
        if sid & 1 or self._client or not self._push_credit:
            return False
        self._push_credit -= 1
        return True

    # -- client: receiving -----------------------------------------------------------

    def _on_push_promise(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        if not self._client:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "a client cannot push")
        if not self._config.enable_push:
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE after SETTINGS_ENABLE_PUSH=0"
            )
        if not sid:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE on stream 0")
        pad = 0
        if flags & PADDED:
            if start >= stop:
                raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for pad length")
            pad = data[start]
            start += 1
        if stop - start < _PROMISE_ID_SIZE:
            raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for the promised id")
        promised = parse_u31(data, start)
        start += _PROMISE_ID_SIZE
        if pad > stop - start:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds payload")
        stop -= pad
        if stop - start > self._max_block_bytes:
            raise H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        if flags & END_HEADERS:
            self._on_push_block(sid, promised, data[start:stop])
            return
        # CONTINUATIONs follow on the parent stream (framer.py assembles them).
        self._hb_sid = sid
        self._hb_promised = promised
        self._hb_end_stream = False
        self._hb_bad_priority = False
        self._hb_chunks = [data[start:stop]]
        self._hb_count = 0
        self._hb_size = stop - start

    def _on_push_block(self, sid: int, promised: int, block: bytes) -> None:
        """A complete PUSH_PROMISE header block on our stream `sid`."""
        # First: the HPACK state must stay in sync (`_decode`, inline: once per push).
        try:
            fields: list[tuple[bytes, bytes]] | None = self._decoder.decode(block)
        except HPACKError as exc:
            raise_unless_too_large(exc)
            fields = None
        if promised & 1 or not promised or promised <= self._highest_peer:
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "promised stream id is not idle")
        self._highest_peer = promised
        parent = self._streams.get(sid)
        if parent is None:
            if sid & 1 and self.id_state(sid) == RESET_BY_US:
                # In flight when we reset the request: the promise is cancelled (§5.1).
                self._stream_error(None, promised, ErrorCode.CANCEL)
                return
            raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE on a closed stream")
        if not sid & 1 or (parent.state != OPEN and parent.state != HALF_CLOSED_LOCAL):
            raise H2ConnectionError(
                ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE on a stream that is not our open request"
            )
        if self._goaway_last is not None or fields is None or len(fields) > self._max_fields:
            self._stream_error(None, promised, ErrorCode.REFUSED_STREAM)
            return
        try:
            method, scheme, authority, path, headers, content_length, protocol = validate_request(
                fields
            )
        except MalformedHeaders:
            self._stream_error(None, promised, ErrorCode.PROTOCOL_ERROR)
            return
        if method not in _PUSHABLE_METHODS or content_length or protocol is not None:
            self._stream_error(None, promised, ErrorCode.PROTOCOL_ERROR)
            return
        if self._pushed_live >= self._config.max_concurrent_streams:
            self._stream_error(None, promised, ErrorCode.REFUSED_STREAM)
            return
        stream = new_stream(promised, self._peer_initial_window, RESERVED_REMOTE)
        stream.is_head_request = method == b"HEAD"
        self._streams[promised] = stream
        self._pushed_live += 1
        self._events.append(
            ev.push_promise_received(sid, promised, method, scheme, authority, path, headers)
        )
