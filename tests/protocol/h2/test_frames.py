"""Frame codec: our builders parse with hyperframe (the oracle) and back, and our
parsers read hyperframe's output."""

from __future__ import annotations

import hyperframe.frame as hf
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from h2books.protocol.h2 import ErrorCode, H2ConnectionError
from h2books.protocol.h2 import frames as f
from tests.protocol.h2.frame_view import Frame, parse_frames

stream_ids = st.integers(1, 2**31 - 1)
payloads = st.binary(max_size=300)
pads = st.one_of(st.none(), st.integers(0, 255))


def oracle(data: bytes) -> hf.Frame:
    frame, length = hf.Frame.parse_frame_header(memoryview(data[:9]))
    frame.parse_body(memoryview(data[9 : 9 + length]))
    assert len(data) == 9 + length
    return frame


@given(stream_ids, payloads, st.booleans(), pads)
def test_data_round_trip(sid: int, data: bytes, end: bool, pad: int | None) -> None:
    raw = f.build_data(sid, data, end_stream=end, pad_length=pad)
    parsed = oracle(raw)
    assert isinstance(parsed, hf.DataFrame)
    assert (parsed.stream_id, parsed.data, "END_STREAM" in parsed.flags) == (sid, data, end)
    assert parsed.flow_controlled_length == len(raw) - 9
    frames, used = parse_frames(raw)
    assert used == len(raw) and frames[0].serialize() == raw
    if pad is not None:
        start, stop = f.strip_padding(raw, 9, len(raw))
        assert raw[start:stop] == data


@given(
    stream_ids,
    payloads,
    st.booleans(),
    st.booleans(),
    pads,
    st.one_of(st.none(), st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 255), st.booleans())),
)
def test_headers_round_trip(
    sid: int,
    block: bytes,
    end_stream: bool,
    end_headers: bool,
    pad: int | None,
    priority: tuple[int, int, bool] | None,
) -> None:
    # hyperframe rejects padding that fills the whole rest (an empty fragment), which
    # RFC 9113 §6.2 allows: only compare where both agree the frame is valid.
    assume(pad is None or block or priority is not None)
    raw = f.build_headers(sid, block, end_stream, end_headers, pad, priority)
    parsed = oracle(raw)
    assert isinstance(parsed, hf.HeadersFrame)
    assert parsed.data == block
    assert ("END_STREAM" in parsed.flags, "END_HEADERS" in parsed.flags) == (
        end_stream,
        end_headers,
    )
    if priority is not None:
        assert (parsed.depends_on, parsed.stream_weight, parsed.exclusive) == priority
        start = 9 + (1 if pad is not None else 0)
        assert f.parse_priority(raw, start) == priority


@given(stream_ids, st.integers(0, 2**31 - 1), st.integers(0, 255), st.booleans())
def test_priority_round_trip(sid: int, dep: int, weight: int, exclusive: bool) -> None:
    raw = f.build_priority(sid, dep, weight, exclusive)
    parsed = oracle(raw)
    assert (parsed.depends_on, parsed.stream_weight, parsed.exclusive) == (dep, weight, exclusive)
    ours = hf.PriorityFrame(sid, depends_on=dep, stream_weight=weight, exclusive=exclusive)
    assert ours.serialize() == raw


@given(stream_ids, st.integers(0, 2**32 - 1))
def test_rst_stream_round_trip(sid: int, code: int) -> None:
    raw = f.build_rst_stream(sid, code)
    assert raw == hf.RstStreamFrame(sid, error_code=code).serialize()


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1)), max_size=10))
def test_settings_round_trip(pairs: list[tuple[int, int]]) -> None:
    raw = f.build_settings(pairs)
    parsed = oracle(raw)
    assert isinstance(parsed, hf.SettingsFrame)
    assert f.parse_settings(raw, 9, len(raw)) == pairs
    assert parsed.settings == dict(pairs)
    assert f.build_settings(ack=True) == hf.SettingsFrame(flags=["ACK"]).serialize()


@given(stream_ids, st.integers(1, 2**30 - 1).map(lambda n: 2 * n), payloads, pads)
def test_push_promise_round_trip(sid: int, promised: int, block: bytes, pad: int | None) -> None:
    assume(pad is None or block)
    parsed = oracle(f.build_push_promise(sid, promised, block, pad_length=pad))
    assert (parsed.promised_stream_id, parsed.data) == (promised, block)


@given(st.binary(min_size=8, max_size=8), st.booleans())
def test_ping_round_trip(opaque: bytes, ack: bool) -> None:
    raw = f.build_ping(opaque, ack)
    parsed = oracle(raw)
    assert parsed.opaque_data == opaque and ("ACK" in parsed.flags) == ack
    with pytest.raises(ValueError):
        f.build_ping(opaque + b"x")


@given(st.integers(0, 2**31 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=50))
def test_goaway_round_trip(last: int, code: int, debug: bytes) -> None:
    raw = f.build_goaway(last, code, debug)
    parsed = oracle(raw)
    assert (parsed.last_stream_id, parsed.error_code, parsed.additional_data) == (
        last,
        code,
        debug,
    )
    assert f.parse_goaway(raw, 9, len(raw)) == (last, code, debug)


@given(st.integers(0, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_window_update_round_trip(sid: int, increment: int) -> None:
    raw = f.build_window_update(sid, increment)
    assert raw == hf.WindowUpdateFrame(sid, window_increment=increment).serialize()
    assert f.parse_u31(raw, 9) == increment


@given(stream_ids, payloads, st.booleans())
def test_continuation_round_trip(sid: int, block: bytes, end: bool) -> None:
    parsed = oracle(f.build_continuation(sid, block, end))
    assert parsed.data == block and ("END_HEADERS" in parsed.flags) == end


def test_hyperframe_output_parses_with_ours() -> None:
    data = hf.DataFrame(3, data=b"abc", flags=["END_STREAM"]).serialize()
    data += hf.HeadersFrame(5, data=b"\x82", flags=["END_HEADERS"]).serialize()
    data += hf.PingFrame(0, opaque_data=b"12345678").serialize()
    frames, used = parse_frames(data + b"\0\0")
    assert used == len(data)
    assert [(x.type, x.flags, x.stream_id, x.payload) for x in frames] == [
        (f.DATA, f.END_STREAM, 3, b"abc"),
        (f.HEADERS, f.END_HEADERS, 5, b"\x82"),
        (f.PING, 0, 0, b"12345678"),
    ]
    assert repr(frames[0]) == "<Frame DATA flags=0x01 stream=3 len=3>"
    assert frames[0] == Frame(f.DATA, 1, 3, b"abc") and frames[0] != frames[1]


def test_reserved_bit_cleared_and_partial_frames_left() -> None:
    raw = f.build_frame(0x42, 0xFF, 0x80000007, b"xyz")
    frames, used = parse_frames(raw + raw[:5])
    assert used == len(raw)
    assert frames == [Frame(0x42, 0xFF, 7, b"xyz")]
    assert "UNKNOWN(0x42)" in repr(frames[0])


def test_strip_padding_errors() -> None:
    with pytest.raises(H2ConnectionError) as info:
        f.strip_padding(b"", 0, 0)
    assert info.value.error_code == ErrorCode.FRAME_SIZE_ERROR
    with pytest.raises(H2ConnectionError) as info:
        f.strip_padding(b"\x04abc", 0, 4)
    assert info.value.error_code == ErrorCode.PROTOCOL_ERROR
    assert f.strip_padding(b"\x03abc", 0, 4) == (1, 1)


def test_builder_argument_checks() -> None:
    with pytest.raises(ValueError):
        f.build_data(1, b"", pad_length=256)
    with pytest.raises(ValueError):
        Frame(0, 0, 1, b"\0" * (1 << 24)).serialize()
