"""The frame reader: the client preface, the first SETTINGS, the frame-size limit,
frames split across reads, and header blocks split into HEADERS (or PUSH_PROMISE) +
CONTINUATIONs.

`receive_data` hands it whole reads; it walks them with an offset and one
`struct.unpack_from` per frame header, keeps an incomplete frame for the next
read (`_need` octets must be there before parsing again), and dispatches HEADERS
and DATA first, other types through one table shared by every connection (a
per-connection dict of bound methods would cost each idle connection ~1 KB).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from .errors import ErrorCode, H2ConnectionError
from .frames import (
    ACK,
    CLIENT_PREFACE,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FRAME_HEADER,
    HEADERS,
    PADDED,
    PRIORITY_FLAG,
    SETTINGS,
    parse_u31,
)
from .push import PushHandler
from .state import NO_CHUNKS

__all__ = ["FrameHandler", "FrameReader"]

# (connection, flags, stream id, buffer, payload start, payload stop)
FrameHandler = Callable[["FrameReader", int, int, bytes, int, int], None]

_unpack_header = FRAME_HEADER.unpack_from
# The HEADERS flags that decide how its payload is read.
_BLOCK_FLAGS = END_HEADERS | PADDED | PRIORITY_FLAG


class FrameReader(PushHandler):
    __slots__ = ()

    # Frame types other than HEADERS and DATA; filled in by the connection class.
    _control_handlers: ClassVar[dict[int, FrameHandler]] = {}

    def _on_data(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        raise NotImplementedError

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
        handlers = self._control_handlers
        max_block = self._max_block_bytes
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
                if flags & _BLOCK_FLAGS == END_HEADERS and sid and length <= max_block:
                    # _on_headers' common case, inline (a call per request saved): a whole
                    # block, no padding, no priority, within the size bound.
                    self._on_header_block(sid, flags & END_STREAM != 0, data[start:stop], False)
                else:
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

    # -- header blocks ---------------------------------------------------------------

    def _on_headers(self, flags: int, sid: int, data: bytes, start: int, stop: int) -> None:
        # The parse loop (`_parse`) takes the common case itself (stream id not 0,
        # END_HEADERS, no padding or priority, within _max_block_bytes) and calls this for
        # the rest: a rule changed here must change there too.
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
            self._hb_chunks = NO_CHUNKS
            self._hb_sid = 0
            promised = self._hb_promised
            if promised:  # the block of a PUSH_PROMISE (client role)
                self._hb_promised = 0
                self._on_push_block(sid, promised, block)
                return
            self._on_header_block(sid, self._hb_end_stream, block, self._hb_bad_priority)

    def _on_stray_continuation(
        self, flags: int, sid: int, data: bytes, start: int, stop: int
    ) -> None:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION without a header block")
