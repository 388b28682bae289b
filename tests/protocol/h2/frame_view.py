"""A generic frame view for tests: one frame as a value, and a splitter."""

from __future__ import annotations

from h2books.protocol.h2.frames import FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_NAMES, build_frame

_MAX_U31 = 0x7FFFFFFF
_MAX_LENGTH = (1 << 24) - 1


class Frame:
    """One frame as a value: type, flags, stream id (R bit cleared) and raw payload."""

    __slots__ = ("flags", "payload", "stream_id", "type")

    def __init__(self, frame_type: int, flags: int, stream_id: int, payload: bytes) -> None:
        self.type = frame_type
        self.flags = flags
        self.stream_id = stream_id
        self.payload = payload

    def serialize(self) -> bytes:
        if len(self.payload) > _MAX_LENGTH:
            raise ValueError("frame payload longer than 2^24-1")
        return build_frame(self.type, self.flags, self.stream_id, self.payload)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.type, self.flags, self.stream_id, self.payload) == (
            other.type,
            other.flags,
            other.stream_id,
            other.payload,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        name = FRAME_NAMES.get(self.type, f"UNKNOWN({self.type:#x})")
        return (
            f"<Frame {name} flags={self.flags:#04x} stream={self.stream_id} "
            f"len={len(self.payload)}>"
        )


def parse_frames(data: bytes) -> tuple[list[Frame], int]:
    """Every complete frame in `data` and the number of octets consumed."""
    frames: list[Frame] = []
    offset = 0
    end = len(data)
    unpack = FRAME_HEADER.unpack_from
    while end - offset >= FRAME_HEADER_SIZE:
        word, flags, stream_id = unpack(data, offset)
        stop = offset + FRAME_HEADER_SIZE + (word >> 8)
        if stop > end:
            break
        payload = bytes(data[offset + FRAME_HEADER_SIZE : stop])
        frames.append(Frame(word & 0xFF, flags, stream_id & _MAX_U31, payload))
        offset = stop
    return frames, offset
