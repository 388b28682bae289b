"""Incremental framing of HTTP/1.1 messages out of a byte stream.

`MessageReader` owns the receive buffer and cuts it into heads and bodies;
it knows nothing of requests or responses. The common case - whole messages
in one read - is parsed straight from the ``bytes`` the caller passed in. Only
a partial message left over is kept, in a ``bytearray`` that later reads
extend (amortised O(1)), and the positions already searched are remembered so
that a peer dribbling one byte per read costs O(n) in total, not O(n^2).
"""

from __future__ import annotations

from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.parser import (
    HEAD_CHARS,
    check_head_bytes,
    check_trailer_names,
    parse_chunk_size,
    parse_fields,
)

__all__ = ["MessageReader"]

# RFC 9112 §2.2 lets a server skip empty lines before a request-line; a few
# are tolerated (some clients send a CRLF after a body), a stream of them is not.
_MAX_EMPTY_LINES = 8
_MAX_CHUNK_LINE = 4096  # chunk-size plus extensions

_SIZE, _DATA, _DATA_END, _TRAILERS = 0, 1, 2, 3


class MessageReader:
    __slots__ = (
        "_body",
        "_body_limit",
        "_body_size",
        "_buf",
        "_chunk_left",
        "_chunk_phase",
        "_empty_lines",
        "_line_seen",
        "_line_status",
        "_max_body",
        "_max_fields",
        "_max_head",
        "_max_line",
        "_pos",
        "_scan",
        "trailers",
    )

    def __init__(self, config: H1Config, line_status: int) -> None:
        self._max_line = config.max_request_line
        self._max_head = config.max_header_bytes
        self._max_fields = config.max_header_count
        self._max_body = config.max_body_size
        self._line_status = line_status  # 414 for a request-line
        self._buf: bytes | bytearray = b""
        self._pos = 0  # start of unconsumed input in _buf
        self._scan = 0  # _buf[_pos:_scan] was searched without finding a delimiter
        self._line_seen = False  # the current head's first line end has been seen
        self._empty_lines = 0
        self._body = bytearray()
        self._chunk_phase = _SIZE
        self._chunk_left = 0
        self._body_size = 0  # de-chunked octets announced so far
        self._body_limit = self._max_body
        # The trailer fields of the last chunked body read whole (read_chunked).
        self.trailers: list[tuple[bytes, bytes]] = []

    # -- buffer --------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            self._buf = data
            self._pos = self._scan = 0
        elif isinstance(buf, bytearray):
            del buf[:pos]  # O(1): CPython moves the bytearray's start pointer
            buf += data
            self._scan -= pos
            self._pos = 0
        else:
            kept = bytearray(memoryview(buf)[pos:])
            kept += data
            self._buf = kept
            self._scan -= pos
            self._pos = 0

    @property
    def buffered(self) -> int:
        """Unconsumed bytes."""
        return len(self._buf) - self._pos

    @property
    def idle(self) -> bool:
        """Nothing buffered and no empty lines counted: the next input starts a message."""
        return self._pos >= len(self._buf) and not self._empty_lines

    def only_empty_lines_left(self) -> bool:
        """True when nothing but line-ending bytes is buffered (a clean EOF point)."""
        return not bytes(self._buf[self._pos :]).strip(b"\r\n")

    def _slice(self, start: int, end: int) -> bytes:
        buf = self._buf
        if isinstance(buf, bytes):
            return buf[start:end]
        with memoryview(buf) as view:
            return bytes(view[start:end])

    # -- heads -----------------------------------------------------------------

    def read_head(self) -> list[bytes] | None:
        """The next head as lines (start-line first), or None until it is complete."""
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            return None
        while buf.startswith(b"\r\n", pos):
            pos += 2
            self._empty_lines += 1
            if self._empty_lines > _MAX_EMPTY_LINES:
                raise H1Error("too many empty lines before the start line")
        self._pos = pos
        resume = self._scan - 3  # a terminator may straddle the previous search's end
        end = buf.find(b"\r\n\r\n", resume if resume > pos else pos)
        if end < 0:
            self._check_partial_head(pos, True)
            return None
        if end + 4 - pos > self._max_head:
            line_end = buf.find(b"\r\n", pos)
            if line_end - pos > self._max_line:
                raise H1Error("request line too long", self._line_status)
            raise H1Error("header section too large", 431)
        head = buf[pos:end] if type(buf) is bytes else self._slice(pos, end)
        self._pos = self._scan = end + 4
        self._line_seen = False
        self._empty_lines = 0
        lines = head.split(b"\r\n")
        if len(lines[0]) > self._max_line:
            raise H1Error("request line too long", self._line_status)
        # Inline fast check; check_head_bytes repeats it to explain a failure.
        if len(head.translate(None, HEAD_CHARS)) != 2 * len(lines) - 2:
            check_head_bytes(head, lines)
        if len(lines) - 1 > self._max_fields:
            raise H1Error("too many header fields", 431)
        return lines

    def _check_partial_head(self, pos: int, is_head: bool) -> None:
        # Called with no blank line found yet: fail early rather than wait for
        # input that can never make this head valid. Only bytes not looked at
        # before are examined.
        buf = self._buf
        size = len(buf)
        fresh = max(pos, self._scan)
        if buf.count(b"\n", fresh) != buf.count(b"\r\n", max(pos, fresh - 1)):
            raise H1Error("bare LF line ending (CRLF required)")
        if is_head and not self._line_seen:
            line_end = buf.find(b"\n", fresh)
            if line_end >= 0:
                self._line_seen = True
                if line_end - 1 - pos > self._max_line:
                    raise H1Error("request line too long", self._line_status)
            elif size - pos > self._max_line + 1:
                raise H1Error("request line too long", self._line_status)
        if size - pos >= self._max_head:
            raise H1Error("header section too large", 431)
        self._scan = size

    # -- bodies ----------------------------------------------------------------

    def read_fixed(self, length: int) -> bytes | None:
        """Exactly ``length`` body bytes, or None until they have all arrived."""
        pos = self._pos
        if len(self._buf) - pos < length:
            return None
        self._pos = self._scan = pos + length
        return self._slice(pos, pos + length)

    def read_fixed_part(self, remaining: int) -> bytes:
        """What is buffered of a body with ``remaining`` octets to come, at most that
        many; b"" when nothing is."""
        pos = self._pos
        available = len(self._buf) - pos
        if available <= 0:
            return b""
        end = pos + (remaining if available >= remaining else available)
        self._pos = self._scan = end
        return self._slice(pos, end)

    def start_chunked(self, limit: int | None = None) -> None:
        """A chunked body begins; its de-chunked size may not pass ``limit`` (the
        configured maximum body size by default)."""
        self._chunk_phase = _SIZE
        self._chunk_left = 0
        self._body = bytearray()
        self._body_size = 0
        self._body_limit = self._max_body if limit is None else limit

    def read_chunked_parts(self, out: list[bytes]) -> list[tuple[bytes, bytes]] | None:
        """Append the chunk data now buffered to ``out``; the trailer fields (``[]`` for
        none) once the last chunk and the trailer section are in, else None.

        Data leaves the receive buffer as it arrives, so a large body is never held
        here. Trailer fields follow the rules of a head (`parse_fields`), within
        ``max_header_bytes`` and ``max_header_count``; fields that frame, route or
        condition a message (content-length, transfer-encoding, host, connection,
        expect) cannot come after the content (RFC 9110 section 6.5.1) and
        are refused (`check_trailer_names`).
        """
        buf = self._buf
        pos = self._pos
        size = len(buf)
        phase = self._chunk_phase
        trailers: list[tuple[bytes, bytes]] | None = None
        try:
            while True:
                if phase == _DATA:
                    take = min(size - pos, self._chunk_left)
                    if take <= 0:
                        return None
                    out.append(self._slice(pos, pos + take))
                    pos += take
                    self._chunk_left -= take
                    if self._chunk_left:
                        return None
                    phase = _DATA_END
                elif phase == _DATA_END:
                    if size - pos < 2:
                        if size > pos and buf[pos] != 13:
                            raise H1Error("missing CRLF after chunk data")
                        return None
                    if not buf.startswith(b"\r\n", pos):
                        raise H1Error("missing CRLF after chunk data")
                    pos += 2
                    phase = _SIZE
                elif phase == _SIZE:
                    line_end = buf.find(b"\r\n", max(pos, self._scan - 1))
                    if line_end < 0:
                        if size - pos > _MAX_CHUNK_LINE:
                            raise H1Error("chunk size line too long")
                        self._scan = size
                        return None
                    if line_end - pos > _MAX_CHUNK_LINE:
                        raise H1Error("chunk size line too long")
                    chunk_size = parse_chunk_size(self._slice(pos, line_end))
                    pos = line_end + 2
                    if chunk_size == 0:
                        phase = _TRAILERS
                    else:
                        self._body_size += chunk_size
                        if self._body_size > self._body_limit:
                            raise H1Error("body too large", 413)
                        self._chunk_left = chunk_size
                        phase = _DATA
                else:
                    if buf.startswith(b"\r\n", pos):
                        pos += 2
                        trailers = []
                        break
                    if size - pos < 2:
                        if size > pos and buf[pos] == 10:
                            raise H1Error("bare LF line ending (CRLF required)")
                        return None
                    end = buf.find(b"\r\n\r\n", max(pos, self._scan - 3))
                    if end < 0:
                        self._check_partial_head(pos, False)
                        return None
                    if end + 4 - pos > self._max_head:
                        raise H1Error("trailer section too large", 431)
                    trailers = self._parse_trailers(self._slice(pos, end))
                    pos = end + 4
                    break
        finally:
            self._pos = pos
            self._scan = max(self._scan, pos)
            self._chunk_phase = phase
        return trailers

    def _parse_trailers(self, section: bytes) -> list[tuple[bytes, bytes]]:
        lines = section.split(b"\r\n")
        check_head_bytes(section, lines)
        if len(lines) > self._max_fields:
            raise H1Error("too many trailer fields", 431)
        fields, _ = parse_fields(lines, 0)
        check_trailer_names(name for name, _ in fields)
        return fields

    def read_chunked(self) -> bytes | None:
        """The whole de-chunked body once the last chunk and trailers are in, else None;
        the trailer fields are then in `trailers`."""
        parts: list[bytes] = []
        trailers = self.read_chunked_parts(parts)
        body = self._body
        for part in parts:
            body += part
        if trailers is None:
            return None
        self.trailers = trailers
        self._body = bytearray()
        return bytes(body)

    def read_until_close(self) -> int:
        """Move everything buffered into the close-delimited body; returns its size."""
        body = self._body
        with memoryview(self._buf) as view:
            body += view[self._pos :]
        self._buf = b""
        self._pos = self._scan = 0
        if len(body) > self._max_body:
            raise H1Error("body too large", 413)
        return len(body)

    def finish_until_close(self) -> bytes:
        body = bytes(self._body)
        self._body = bytearray()
        return body

    def take_rest(self) -> bytes:
        """Everything buffered and not consumed, handed over (after a 101 Switching
        Protocols, the first bytes of the new protocol); the reader is left empty."""
        with memoryview(self._buf) as view:
            rest = bytes(view[self._pos :])
        self._buf = b""
        self._pos = self._scan = 0
        return rest
