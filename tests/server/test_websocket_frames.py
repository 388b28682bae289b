"""The WebSocket frames read and written without wsproto (server/websocket_frames.py):
what they produce must be what wsproto would, for valid input and for invalid input
(which must reach wsproto, so that it fails the socket with the RFC close code)."""

from __future__ import annotations

import os

import pytest
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage

from h2books.server.websocket_frames import (
    FAST_PAYLOAD,
    FrameRouter,
    encode_message,
    unmask,
)

from .websocket_support import masked_frame


def _xor(payload: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 16, 125, 4096])
def test_unmask_is_the_xor_of_the_repeated_key(size: int) -> None:
    payload = os.urandom(size)
    key = os.urandom(4)
    assert unmask(_xor(payload, key), key) == payload


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
@pytest.mark.parametrize("text", [True, False])
def test_encode_message_is_wsprotos_frame(size: int, text: bool) -> None:
    data: str | bytes = "é" * (size // 2) if text else os.urandom(size)
    event = TextMessage(data) if isinstance(data, str) else BytesMessage(data)
    assert encode_message(data) == Connection(ConnectionType.SERVER).send(event)


@pytest.mark.parametrize("data", [5, [1, 2], None])
def test_encode_message_refuses_what_is_neither_bytes_nor_text(data: object) -> None:
    with pytest.raises(TypeError):
        Connection(ConnectionType.SERVER).send(BytesMessage(data))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_message(data)  # type: ignore[arg-type]


# -- the router against wsproto alone ---------------------------------------------------


def _wsproto_alone(stream: bytes) -> list[tuple[str, object]]:
    """What wsproto makes of `stream`: whole messages, pings, the close code."""
    ws = Connection(ConnectionType.SERVER)
    ws.receive_data(stream)
    return _outcome(ws.events(), [])


def _outcome(events: object, parts: list[str | bytes]) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    for event in events:  # type: ignore[attr-defined]
        assert isinstance(event, Event)
        if isinstance(event, Message):
            parts.append(event.data)
            if event.message_finished:
                whole = "".join(parts) if isinstance(event.data, str) else b"".join(parts)  # type: ignore[arg-type]
                seen.append(("message", whole))
                parts.clear()
        elif isinstance(event, Ping):
            seen.append(("ping", event.payload))
        elif isinstance(event, CloseConnection):
            seen.append(("close", event.code))
            break
    return seen


def _routed(stream: bytes, cut: int, slice_size: int = 4096) -> list[tuple[str, object]]:
    """What the router and wsproto together make of `stream`, arriving in reads of `cut`
    bytes, read as the server's pump reads (the head of a frame kept for the rest)."""
    ws = Connection(ConnectionType.SERVER)
    router = FrameRouter(enabled=True)
    seen: list[tuple[str, object]] = []
    parts: list[str | bytes] = []
    data = b""
    for start in range(0, len(stream), cut):
        data += stream[start : start + cut]
        pos = 0
        while pos < len(data):
            end, message = router.split(data, pos, slice_size)
            if message is not None:
                assert not parts, "a message read here inside a fragmented one"
                seen.append(("message", message))
            elif end > pos:
                ws.receive_data(data[pos:end])
                seen.extend(_outcome(ws.events(), parts))
            else:
                break  # the rest of this frame is still to come
            if seen and seen[-1][0] == "close":
                return seen
            pos = end
        data = data[pos:]
    return seen


VALID = [
    masked_frame(0x1, "héllo".encode()),
    masked_frame(0x2, b""),
    masked_frame(0x2, os.urandom(300)),  # 16-bit length
    masked_frame(0x1, b"frag", fin=False),
    masked_frame(0x9, b"ping inside a fragmented message"),
    masked_frame(0x0, b"ment", fin=False),
    masked_frame(0x0, b"ed"),
    masked_frame(0x2, os.urandom(FAST_PAYLOAD)),
    masked_frame(0x2, os.urandom(FAST_PAYLOAD + 1)),  # to wsproto, in parts
    masked_frame(0x2, os.urandom(70_000)),  # 64-bit length
    masked_frame(0x9, b"ping"),
    masked_frame(0x1, b"after all that"),
    masked_frame(0x8, (1000).to_bytes(2, "big")),
]


def _non_minimal(payload: bytes) -> bytes:
    """A frame whose 16-bit length could have been 7 bits: RFC 6455 §5.2 forbids it."""
    key = os.urandom(4)
    return bytes([0x82, 0x80 | 126]) + len(payload).to_bytes(2, "big") + key + _xor(payload, key)


INVALID = {
    "unmasked": masked_frame(0x1, b"unmasked", mask=False),
    "invalid utf-8": masked_frame(0x1, b"\xff\xfe not utf-8"),
    "a surrogate": masked_frame(0x1, b"\xed\xa0\x80"),
    "rsv1 without an extension": bytes([0xC1]) + masked_frame(0x1, b"rsv")[1:],
    "non-minimal length": _non_minimal(b"short"),
    "text inside a fragmented message": masked_frame(0x1, b"a", fin=False)
    + masked_frame(0x1, b"b"),
    "continuation of nothing": masked_frame(0x0, b"c"),
    "reserved opcode": masked_frame(0x3, b"r"),
}


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 64, 1000, 1 << 20])
def test_valid_frames_read_as_wsproto_reads_them(cut: int) -> None:
    stream = b"".join(VALID)
    expected = _wsproto_alone(stream)
    assert ("message", "fragmented") in expected and expected[-1] == ("close", 1000)
    assert _routed(stream, cut) == expected


@pytest.mark.parametrize("name", sorted(INVALID))
@pytest.mark.parametrize("cut", [1, 5, 1 << 20])
def test_invalid_frames_reach_wsproto(name: str, cut: int) -> None:
    stream = masked_frame(0x1, b"first") + INVALID[name] + masked_frame(0x1, b"never")
    expected = _wsproto_alone(stream)
    assert expected[0] == ("message", "first")
    assert expected[-1][0] == "close" and expected[-1][1] in (1002, 1007)
    assert _routed(stream, cut) == expected


def test_a_small_whole_frame_is_read_here() -> None:
    router = FrameRouter(enabled=True)
    frames = masked_frame(0x1, b"one") + masked_frame(0x2, b"two")
    end, message = router.split(frames, 0, 4096)
    assert message == "one"
    assert router.split(frames, end, 4096) == (len(frames), b"two")


def test_the_head_of_a_small_frame_waits_for_the_rest() -> None:
    router = FrameRouter(enabled=True)
    frame = masked_frame(0x1, b"x" * 200)
    for cut in (1, 3, 8, len(frame) - 1):
        assert router.split(frame[:cut], 0, 4096) == (0, None)
    assert router.split(frame, 0, 4096) == (len(frame), "x" * 200)


def test_wsproto_gets_a_big_frame_in_slices_then_the_next_frame_is_read_here() -> None:
    router = FrameRouter(enabled=True)
    big = masked_frame(0x2, b"b" * 10_000)
    stream = big + masked_frame(0x1, b"small")
    pos, pieces = 0, []
    while pos < len(big):
        end, message = router.split(stream, pos, 4096)
        assert message is None and end - pos <= 4096
        pieces.append(stream[pos:end])
        pos = end
    assert b"".join(pieces) == big
    assert router.split(stream, pos, 4096) == (len(stream), "small")


def test_with_an_extension_everything_goes_to_wsproto_in_slices() -> None:
    router = FrameRouter(enabled=False)
    frame = masked_frame(0x1, b"plain")
    assert router.split(frame, 0, 4096) == (len(frame), None)
    assert router.split(b"z" * 10_000, 0, 4096) == (4096, None)
