"""HTTP/2 frame codec (RFC 9113 §4 and §6): constants, builders and payload parsers.

The connection core parses frames in place (an offset into the received bytes), so
the parsers here take ``(buffer, start, stop)`` and never slice the whole buffer.
Builders return ``bytes`` ready for the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Final

from .errors import ErrorCode, H2ConnectionError

__all__ = [
    "ACK",
    "CLIENT_PREFACE",
    "CONTINUATION",
    "DATA",
    "END_HEADERS",
    "END_STREAM",
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "FRAME_NAMES",
    "GOAWAY",
    "HEADERS",
    "PADDED",
    "PING",
    "PRIORITY",
    "PRIORITY_FLAG",
    "PUSH_PROMISE",
    "RST_STREAM",
    "SETTINGS",
    "WINDOW_UPDATE",
    "build_continuation",
    "build_data",
    "build_frame",
    "build_goaway",
    "build_headers",
    "build_ping",
    "build_priority",
    "build_push_promise",
    "build_rst_stream",
    "build_settings",
    "build_window_update",
    "parse_goaway",
    "parse_priority",
    "parse_settings",
    "parse_u31",
    "strip_padding",
]

CLIENT_PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (§6). Plain ints: they are compared on every frame.
DATA: Final = 0x0
HEADERS: Final = 0x1
PRIORITY: Final = 0x2
RST_STREAM: Final = 0x3
SETTINGS: Final = 0x4
PUSH_PROMISE: Final = 0x5
PING: Final = 0x6
GOAWAY: Final = 0x7
WINDOW_UPDATE: Final = 0x8
CONTINUATION: Final = 0x9

FRAME_NAMES: Final = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION",
}

# Flags (§6). ACK shares its bit with END_STREAM; they never apply to the same frame type.
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

FRAME_HEADER_SIZE: Final = 9
# 24-bit length and 8-bit type share the first 32-bit word: one unpack reads the whole
# 9-octet header, then `word >> 8` is the length and `word & 0xFF` the type.
FRAME_HEADER: Final = struct.Struct(">IBI")
_U32: Final = struct.Struct(">I")
_U32_PAIR: Final = struct.Struct(">II")
_SETTING: Final = struct.Struct(">HI")
_PRIORITY_FIELDS: Final = struct.Struct(">IB")

_MAX_U31: Final = 0x7FFFFFFF


def build_frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """Any frame, unchecked: tests use it to build invalid frames on purpose."""
    return FRAME_HEADER.pack((len(payload) << 8) | frame_type, flags, stream_id) + payload


def _padded(payload: bytes, pad_length: int | None) -> tuple[bytes, int]:
    if pad_length is None:
        return payload, 0
    if not 0 <= pad_length <= 255:
        raise ValueError("pad_length must be in [0, 255]")
    return bytes((pad_length,)) + payload + b"\0" * pad_length, PADDED


def build_data(
    stream_id: int, data: bytes, end_stream: bool = False, pad_length: int | None = None
) -> bytes:
    payload, flags = _padded(data, pad_length)
    if end_stream:
        flags |= END_STREAM
    return build_frame(DATA, flags, stream_id, payload)


def build_headers(
    stream_id: int,
    block: bytes,
    end_stream: bool = False,
    end_headers: bool = True,
    pad_length: int | None = None,
    priority: tuple[int, int, bool] | None = None,
) -> bytes:
    """HEADERS; `priority` is ``(depends_on, weight_octet, exclusive)`` (weight as sent, 0-255)."""
    flags = 0
    if priority is not None:
        depends_on, weight, exclusive = priority
        block = _PRIORITY_FIELDS.pack(depends_on | (exclusive << 31), weight) + block
        flags |= PRIORITY_FLAG
    payload, pad_flag = _padded(block, pad_length)
    flags |= pad_flag
    if end_stream:
        flags |= END_STREAM
    if end_headers:
        flags |= END_HEADERS
    return build_frame(HEADERS, flags, stream_id, payload)


def build_continuation(stream_id: int, block: bytes, end_headers: bool = True) -> bytes:
    return build_frame(CONTINUATION, END_HEADERS if end_headers else 0, stream_id, block)


def build_priority(
    stream_id: int, depends_on: int = 0, weight: int = 15, exclusive: bool = False
) -> bytes:
    payload = _PRIORITY_FIELDS.pack(depends_on | (exclusive << 31), weight)
    return build_frame(PRIORITY, 0, stream_id, payload)


def build_rst_stream(stream_id: int, error_code: int) -> bytes:
    return build_frame(RST_STREAM, 0, stream_id, _U32.pack(error_code))


def build_settings(settings: Iterable[tuple[int, int]] = (), ack: bool = False) -> bytes:
    payload = b"".join(_SETTING.pack(ident, value) for ident, value in settings)
    return build_frame(SETTINGS, ACK if ack else 0, 0, payload)


def build_push_promise(
    stream_id: int,
    promised_stream_id: int,
    block: bytes,
    end_headers: bool = True,
    pad_length: int | None = None,
) -> bytes:
    payload, flags = _padded(_U32.pack(promised_stream_id) + block, pad_length)
    if end_headers:
        flags |= END_HEADERS
    return build_frame(PUSH_PROMISE, flags, stream_id, payload)


def build_ping(opaque: bytes = b"\0" * 8, ack: bool = False) -> bytes:
    if len(opaque) != 8:
        raise ValueError("PING payload must be 8 octets")
    return build_frame(PING, ACK if ack else 0, 0, opaque)


def build_goaway(last_stream_id: int, error_code: int, debug: bytes = b"") -> bytes:
    return build_frame(GOAWAY, 0, 0, _U32_PAIR.pack(last_stream_id, error_code) + debug)


def build_window_update(stream_id: int, increment: int) -> bytes:
    return build_frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment))


# -- payload parsers (in place) ---------------------------------------------------------


def strip_padding(buf: bytes, start: int, stop: int) -> tuple[int, int]:
    """Bounds of the content of a PADDED frame payload ``buf[start:stop]``.

    A payload too short to hold the Pad Length octet is a FRAME_SIZE_ERROR (§4.2);
    padding that does not fit in the rest is a PROTOCOL_ERROR (§6.1, §6.2).
    """
    if start >= stop:
        raise H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "no room for the pad length")
    pad = buf[start]
    start += 1
    if pad > stop - start:
        raise H2ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding exceeds the frame payload")
    return start, stop - pad


def parse_u31(buf: bytes, start: int) -> int:
    """A 31-bit value after a reserved bit (stream ids, window increments)."""
    value: int = _U32.unpack_from(buf, start)[0]
    return value & _MAX_U31


def parse_priority(buf: bytes, start: int) -> tuple[int, int, bool]:
    """``(depends_on, weight_octet, exclusive)`` from the 5 octets at `start`."""
    word, weight = _PRIORITY_FIELDS.unpack_from(buf, start)
    return word & _MAX_U31, weight, bool(word >> 31)


def parse_settings(buf: bytes, start: int, stop: int) -> list[tuple[int, int]]:
    """The (identifier, value) pairs; the caller checked the length is a multiple of 6."""
    unpack = _SETTING.unpack_from
    return [unpack(buf, offset) for offset in range(start, stop, 6)]


def parse_goaway(buf: bytes, start: int, stop: int) -> tuple[int, int, bytes]:
    """``(last_stream_id, error_code, debug_data)``; the caller checked length >= 8."""
    last, code = _U32_PAIR.unpack_from(buf, start)
    return last & _MAX_U31, code, bytes(buf[start + 8 : stop])
