"""The common WebSocket frames read and written without wsproto: a client's whole, small,
unfragmented text or binary frame, and a server's whole message (RFC 6455 §5).

Why: wsproto costs ~13.6 µs to parse one masked 16-byte text frame and ~3.5 µs to
build the answer (generators, a dataclass event, an incremental UTF-8 decoder and
pure-Python unmasking per frame; measured on the benchmark machine), about as much as
the whole gap to Uvicorn + websockets in the serial echo (benchmarks/PROFILE.md,
"WebSocket echo (issue 10)"). Here the same frame costs ~2 µs. Everything else still
goes to wsproto, whole frames at a time and in order: control frames (ping, pong,
close), fragmented messages, frames over `FAST_PAYLOAD`, frames with RSV bits or an
extension (permessage-deflate), and anything invalid, which wsproto answers with the
RFC close code. So the fast path only takes frames that are valid by every rule
wsproto checks: FIN set, RSV clear, opcode 1 or 2, masked (a client's frames must
be), the length in its shortest form, and, for text, valid UTF-8 (else wsproto gets
the frame and fails the socket with 1007).

`FrameRouter.split` walks the input one frame (or one slice of a frame for wsproto) at
a time; it keeps track of what wsproto has been given: the rest of a frame it has
begun (so that every frame it gets starts at a frame boundary) and whether a
fragmented message is open (whose frames must all go to wsproto).
"""

from __future__ import annotations

import struct

# A whole frame up to this payload is read here (a longer one goes to wsproto, which
# hands it over in parts as it arrives); its head waits for the rest of it in memory.
FAST_PAYLOAD = 4096 - 8
TEXT = 0x1
BINARY = 0x2
_FIN = 0x80
_MASKED = 0x80
_LENGTH = 0x7F
_SIMPLE = {_FIN | TEXT: TEXT, _FIN | BINARY: BINARY}  # first byte -> opcode
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")
_HEAD16 = struct.Struct("!BBH")
_HEAD64 = struct.Struct("!BBQ")


def unmask(payload: bytes, key: bytes) -> bytes:
    """`payload` XOR the 4-byte masking `key` repeated (RFC 6455 §5.3), as whole ints."""
    size = len(payload)
    if not size:
        return b""
    mask = (key * ((size + 3) // 4))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")


def encode_message(data: str | bytes) -> bytes:
    """A server's frame for a whole message: FIN, no mask (RFC 6455 §5.1), no extension."""
    if isinstance(data, str):
        payload = data.encode("utf-8")
        first = _FIN | TEXT
    elif isinstance(data, bytes | bytearray | memoryview):
        payload = bytes(data)
        first = _FIN | BINARY
    else:  # bytes(5) would be five NULs: refuse it as wsproto does
        raise TypeError(f"a WebSocket message is bytes or text, not {type(data).__name__}")
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return _HEAD16.pack(first, 126, size) + payload
    return _HEAD64.pack(first, 127, size) + payload


class FrameRouter:
    """Splits a client's input into frames read here and pieces for wsproto (see above)."""

    __slots__ = ("_fragmented", "_owed", "enabled")

    def __init__(self, enabled: bool) -> None:
        # False with an extension (permessage-deflate): every byte goes to wsproto.
        self.enabled = enabled
        self._owed = 0  # bytes of a frame wsproto has begun and not yet been given
        self._fragmented = False  # wsproto holds an unfinished fragmented message

    def split(self, data: bytes, pos: int, slice_size: int) -> tuple[int, str | bytes | None]:
        """What to do with `data[pos:]` (not empty): `(end, message)` for a frame read
        here, whole, up to `end`; `(end, None)` for `data[pos:end]` to go to wsproto (at
        most `slice_size` bytes); `(pos, None)` when the frame at `pos` is read here but
        not all of it has come yet."""
        available = len(data) - pos
        owed = self._owed
        if owed or not self.enabled:
            if not self.enabled:
                owed = available
            size = min(owed, available, slice_size)
            if self.enabled:
                self._owed = owed - size
            return pos + size, None
        if available < 2:
            return pos, None
        first = data[pos]
        second = data[pos + 1]
        length = second & _LENGTH
        head = 2
        if length == 126:
            head = 4
        elif length == 127:
            head = 10
        masked = second & _MASKED
        if masked:
            head += 4
        if available < head:
            return pos, None
        if length == 126:
            length = _U16.unpack_from(data, pos + 2)[0]
            minimal = length >= 126
        elif length == 127:
            length = _U64.unpack_from(data, pos + 2)[0]
            minimal = length >= 65536
        else:
            minimal = True
        opcode = _SIMPLE.get(first)
        if (
            opcode is not None
            and masked
            and minimal
            and length <= FAST_PAYLOAD
            and not self._fragmented
        ):
            end = pos + head + length
            if end > len(data):
                return pos, None  # a small frame: wait for the rest of it
            payload = unmask(data[pos + head : end], data[pos + head - 4 : pos + head])
            if opcode == BINARY:
                return end, payload
            try:
                return end, payload.decode("utf-8")
            except UnicodeDecodeError:
                pass  # wsproto fails the socket with 1007
        # To wsproto, whole (in slices). Track the fragmented messages it holds.
        if (first & 0x0F) < 0x8:  # a data frame (a reserved opcode fails anyway)
            self._fragmented = not first & _FIN
        self._owed = head + length
        return self.split(data, pos, slice_size)
