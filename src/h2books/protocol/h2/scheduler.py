"""The outbound scheduler: HEADERS and DATA within the flow-control windows.

A response that fits in the windows is written at once (`send_response` writes two
frame headers and the stream is forgotten); what the windows hold back waits in the
stream's `SendQueue` and goes out when a WINDOW_UPDATE or SETTINGS opens them,
round-robin between streams, one frame each per round. Trailers and END_STREAM
follow the last queued octet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from .errors import H2UsageError
from .frames import (
    CLIENT_PREFACE,
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    FRAME_HEADER,
    HEADERS,
    build_settings,
    build_window_update,
)
from .settings import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFAULT_INITIAL_WINDOW_SIZE,
    DEFAULT_MAX_FRAME_SIZE,
    SettingCode,
)
from .stream import (
    CLOSED,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    RESERVED_LOCAL,
    SEND_HEADERS,
    TRANSITIONS,
    SendQueue,
    Stream,
)
from .stream_ids import StreamIds

__all__ = ["STATUS_FIELDS", "BlockCache", "Fields", "OutboundScheduler"]

Fields = Sequence[tuple[bytes, bytes]]


class BlockCache(Protocol):
    """Somewhere to keep the HPACK block of a response that is sent again and again (a
    precomputed native `Response` is one): (encoder table state, status, fields, block)."""

    hpack_block: tuple[int, int, Fields, bytes] | None


_pack_header = FRAME_HEADER.pack

# DATA payloads at least this big, when they are views of immutable bytes, are handed
# out by `buffers_to_send` as they are instead of being copied into the output buffer.
# Smaller frames are coalesced there, so a TLS transport never makes tiny records.
ZERO_COPY_MIN: Final = 2048

STATUS_FIELDS: Final = {code: (b":status", str(code).encode("ascii")) for code in range(100, 600)}


def _immutable(data: bytes | memoryview) -> bool:
    """True if `data` cannot change under us: bytes, or a view of bytes."""
    return type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes)


class OutboundScheduler(StreamIds):
    __slots__ = ()

    def _output_pieces(self) -> list[bytes | memoryview]:
        """The output as a list of pieces, to which views can be added without a copy:
        what the buffer holds so far becomes one piece."""
        out = self._out
        pieces = self._pieces
        if pieces is None:
            pieces = self._pieces = []
        if out:
            pieces.append(bytes(out))
            out.clear()
        return pieces

    def _put_view(self, payload: bytes | memoryview) -> None:
        """Queue a big immutable payload without copying it."""
        self._output_pieces().append(payload)

    @property
    def queued_output_size(self) -> int:
        """Octets queued for the peer and not yet taken by `buffers_to_send`/`data_to_send`."""
        pieces = self._pieces
        size = len(self._out)
        if pieces is not None:
            size += sum(len(piece) for piece in pieces)
        return size

    def buffers_to_send(self) -> list[bytes | memoryview]:
        """Everything queued for the peer, in order, as pieces for `writelines`:
        coalesced frames as bytes, big DATA payloads as views of the caller's bytes
        (do not mutate those until written). Empties the queue like `data_to_send`."""
        out = self._out
        pieces = self._pieces
        if pieces is None:
            if not out:
                return []
            buffers: list[bytes | memoryview] = [bytes(out)]
        else:
            self._pieces = None
            buffers = pieces
            if out:
                buffers.append(bytes(out))
        out.clear()
        self._control_pending = 0
        self._output_taken = True
        return buffers

    def data_to_send(self) -> bytes:
        """Everything queued for the peer as one bytes object."""
        out = self._out
        if self._pieces is None:
            if not out:
                return b""
            data = bytes(out)
            out.clear()
            self._control_pending = 0
            self._output_taken = True
            return data
        return b"".join(self.buffers_to_send())

    def _queue_preface(self) -> None:
        """(Client: the magic string, then) SETTINGS and a WINDOW_UPDATE that raises
        the connection window to `connection_window_size`."""
        if self._initiated:
            return
        self._initiated = True
        cfg = self._config
        values: dict[int, int] = {}
        if cfg.header_table_size != DEFAULT_HEADER_TABLE_SIZE:
            values[SettingCode.HEADER_TABLE_SIZE] = cfg.header_table_size
        if self._client:
            values[SettingCode.ENABLE_PUSH] = int(cfg.enable_push)
        values[SettingCode.MAX_CONCURRENT_STREAMS] = cfg.max_concurrent_streams
        if cfg.initial_window_size != DEFAULT_INITIAL_WINDOW_SIZE:
            values[SettingCode.INITIAL_WINDOW_SIZE] = cfg.initial_window_size
        if cfg.max_frame_size != DEFAULT_MAX_FRAME_SIZE:
            values[SettingCode.MAX_FRAME_SIZE] = cfg.max_frame_size
        values[SettingCode.MAX_HEADER_LIST_SIZE] = cfg.max_header_list_size
        if cfg.enable_connect_protocol and not self._client:
            values[SettingCode.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 8441
        out = self._out
        if self._client:
            out += CLIENT_PREFACE
        out += build_settings(self._local.send(values))
        extra = self._recv.target - DEFAULT_INITIAL_WINDOW_SIZE
        if extra > 0:
            out += build_window_update(0, extra)

    def _sendable(self, stream_id: int) -> Stream | None:
        """The open stream, or None when sending on it is a harmless no-op (the stream
        was reset or closed meanwhile, or the connection is over)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            if stream.state == HALF_CLOSED_LOCAL:
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
            self._queue_preface()
            stream = self._open_local_stream(fields)
        else:
            stream = self._sendable(stream_id)
            if stream is None:
                return
            if stream.send_queue is not None:
                raise H2UsageError("headers after queued data: use send_trailers")
            if stream.state == RESERVED_LOCAL:  # the head of a pushed response
                stream.state = TRANSITIONS[(RESERVED_LOCAL, SEND_HEADERS)]
        self._write_header_block(stream_id, self._encoder.encode(fields), end_stream)
        # A 1xx head leaves room for the final one.
        if not (fields and fields[0][0] == b":status" and fields[0][1][:1] == b"1"):
            stream.headers_sent = True
        if end_stream:
            self._local_ended(stream)

    def send_response(
        self,
        stream_id: int,
        status: int,
        fields: Fields,
        body: bytes,
        cache: BlockCache | None = None,
    ) -> int:
        """HEADERS (":status" + fields) then the body as DATA frames, END_STREAM on the
        last frame. What the windows hold back goes out later, automatically.

        With a `cache`, the header block encoded for the same status and the same `fields`
        object is sent again as long as the encoder's table is in the state it was encoded
        in (on this connection or any other): one comparison instead of an encoding.

        Returns `queued_output_size` after it (a server writes during a long read once
        that is large): one length here, where the property would be one more call."""
        stream = self._streams.get(stream_id)
        # One comparison tells an open request stream from the rest: half-closed (local),
        # or a pushed stream still reserved (see the states in stream.py).
        if stream is None or stream.headers_sent or stream.state > HALF_CLOSED_REMOTE:
            if stream is not None and stream.state == RESERVED_LOCAL and not stream.headers_sent:
                stream.state = TRANSITIONS[(RESERVED_LOCAL, SEND_HEADERS)]
            else:
                stream = self._sendable(stream_id)
                if stream is None:
                    return self.queued_output_size
                raise H2UsageError(f"response already started on stream {stream_id}")
        # The one cache hit test, against the state the encoder knows (until its table
        # changes); it is asked for the state only when it does not know it and there
        # is a cache to look in (-1 matches no cached state).
        table_state = self._encoder.known_table_state
        if table_state is None:
            table_state = -1 if cache is None else self._encoder.table_state()
        cached = None if cache is None else cache.hpack_block
        if (
            cached is not None
            and cached[2] is fields
            and cached[1] == status
            and cached[0] == table_state
        ):
            # This head's block, and the table in the state it was encoded against (a
            # cached state is never -1); its status was checked when it was cached.
            block = cached[3]
        else:
            block = self._response_block(status, fields, cache, table_state)
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
            return self.queued_output_size
        if not size:
            out += _pack_header((block_size << 8) | HEADERS, END_HEADERS | END_STREAM, stream_id)
            out += block
            self._local_ended(stream)
            return len(out) if self._pieces is None else self.queued_output_size
        out += _pack_header((block_size << 8) | HEADERS, END_HEADERS, stream_id)
        out += block
        if size <= max_frame and size <= stream.send_window and size <= self._send_window:
            self._send_window -= size  # (the stream's: below, unless it is forgotten)
            out += _pack_header(size << 8, END_STREAM, stream_id)
            if size >= ZERO_COPY_MIN and type(body) is bytes:
                self._put_view(body)
            else:
                out += body
            if stream.state == HALF_CLOSED_REMOTE and stream.inbound is None:
                # The common case, inlined: a GET answered in full is closed and forgotten.
                del self._streams[stream_id]
                if self._pushed_live and not stream_id & 1:
                    self._pushed_live -= 1  # a pushed response, sent in full
                # `_remember_closed` (stream_ids.py) inlined, a call per request saved
                # (~400 instructions): the bound and its trim are explained there.
                recent = self._recent
                if len(recent) >= self._recent_limit:
                    recent = self._make_recent_room()
                recent[stream_id] = CLOSED
            else:
                stream.send_window -= size
                self._local_ended(stream)
            return len(out) if self._pieces is None else self.queued_output_size
        self._send_body(stream, body, True)
        return self.queued_output_size

    def _response_block(
        self, status: int, fields: Fields, cache: BlockCache | None, table_state: int
    ) -> bytes:
        """The header block of a final response head, its status checked and encoded
        (`send_response` has already looked in `cache`). Kept in `cache` when the
        encoding left the encoder's table in `table_state`, the state it found."""
        status_field = STATUS_FIELDS.get(status)
        if status_field is None or status < 200:
            raise H2UsageError(f"invalid final status {status}")
        encoder = self._encoder
        block = encoder.encode([status_field, *fields])
        if cache is not None and table_state >= 0 and encoder.table_state() == table_state:
            # It inserted nothing, so it stays the encoding while the state holds.
            cache.hpack_block = (table_state, status, fields, block)
        return block

    def _body_stream(self, stream_id: int, what: str) -> Stream | None:
        """The stream that `what` (data, trailers) goes on, or None when it is gone."""
        stream = self._sendable(stream_id)
        if stream is None:
            return None
        if not stream.headers_sent:
            raise H2UsageError(f"send headers before {what}")
        queue = stream.send_queue
        if queue is not None and (queue.end_stream or queue.trailers is not None):
            raise H2UsageError(f"stream {stream_id} already ended")
        return stream

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Body bytes; sent now as far as the windows allow, the rest queued in order."""
        stream = self._body_stream(stream_id, "data")
        if stream is None:
            return
        queue = stream.send_queue
        if queue is not None:
            # A mutable buffer could change under us while queued: keep a copy of it.
            queue.append(data if _immutable(data) else bytes(data))
            queue.end_stream = end_stream
            return
        self._send_body(stream, data, end_stream)

    def send_trailers(self, stream_id: int, fields: Fields) -> None:
        """Trailer fields ending the stream, after any data still queued."""
        stream = self._body_stream(stream_id, "trailers")
        if stream is None:
            return
        queue = stream.send_queue
        if queue is not None:
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
        view = memoryview(data)
        shared = _immutable(data)
        sent = max(0, min(size, stream.send_window, self._send_window))
        if sent:
            flags = END_STREAM if end_stream and sent == size else 0
            if shared and sent >= ZERO_COPY_MIN:
                self._put_data_views(sid, view[:sent] if sent < size else view, flags)
            else:
                self._write_data_frames(sid, view[:sent], flags)
            stream.send_window -= sent
            self._send_window -= sent
        if sent == size:
            if end_stream:
                self._local_ended(stream)
            return
        queue = SendQueue()
        # A mutable buffer could change under us while queued: keep a copy of it.
        queue.append(view[sent:] if shared else bytes(view[sent:]))
        queue.end_stream = end_stream
        stream.send_queue = queue
        if not self._blocked:
            self._blocked_since = self._now
        self._blocked[sid] = stream

    def _put_data_views(self, sid: int, view: memoryview, flags: int) -> None:
        """DATA frames carrying `view` (of immutable bytes) as pieces, without copying it;
        the last frame gets `flags`. The full-size frames share one header object: this
        runs once per 16 KiB of a big body, so it does as little as it can per frame."""
        pieces = self._output_pieces()
        out = self._out
        max_frame = self._peer_max_frame
        size = len(view)
        last = size - 1 - (size - 1) % max_frame  # where the last frame starts
        if last:
            header = _pack_header(max_frame << 8, 0, sid)
            append = pieces.append
            for pos in range(0, last, max_frame):
                append(header)
                append(view[pos : pos + max_frame])
        tail = size - last
        if tail >= ZERO_COPY_MIN:
            pieces.append(_pack_header(tail << 8, flags, sid))
            pieces.append(view[last:])
        else:
            out += _pack_header(tail << 8, flags, sid)
            out += view[last:]

    def _write_data_frames(self, sid: int, view: memoryview, flags: int) -> None:
        """DATA frames carrying `view`, copied into the output buffer; the last frame
        gets `flags`."""
        out = self._out
        max_frame = self._peer_max_frame
        size = len(view)
        pos = 0
        while pos < size:
            end = min(pos + max_frame, size)
            out += _pack_header((end - pos) << 8, flags if end == size else 0, sid)
            out += view[pos:end]
            pos = end

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
            if size >= ZERO_COPY_MIN:
                self._put_view(chunk)  # queued chunks are views of bytes, or copies
            else:
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
