"""The stream state tables and the send queue."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h2.errors import ErrorCode
from h2books.protocol.h2.frames import DATA, HEADERS, RST_STREAM, WINDOW_UPDATE
from h2books.protocol.h2.stream import (
    CLOSED,
    FORGOTTEN,
    FRAME_RULES,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    IDLE,
    OPEN,
    RECV_END_STREAM,
    RECV_RST_STREAM,
    REFUSED,
    RESET_BY_PEER,
    RESET_BY_US,
    SEND_END_STREAM,
    SEND_RST_STREAM,
    STATE_NAMES,
    TRANSITIONS,
    SendQueue,
    new_stream,
)


def test_end_stream_both_ways_closes_in_either_order() -> None:
    assert TRANSITIONS[(OPEN, RECV_END_STREAM)] == HALF_CLOSED_REMOTE
    assert TRANSITIONS[(HALF_CLOSED_REMOTE, SEND_END_STREAM)] == CLOSED
    assert TRANSITIONS[(OPEN, SEND_END_STREAM)] == HALF_CLOSED_LOCAL
    assert TRANSITIONS[(HALF_CLOSED_LOCAL, RECV_END_STREAM)] == CLOSED


def test_no_transition_out_of_a_closed_state_or_twice_the_same_end() -> None:
    for state in (IDLE, CLOSED, RESET_BY_PEER, RESET_BY_US, FORGOTTEN, REFUSED):
        assert not [key for key in TRANSITIONS if key[0] == state]
    assert (HALF_CLOSED_REMOTE, RECV_END_STREAM) not in TRANSITIONS
    assert (HALF_CLOSED_LOCAL, SEND_END_STREAM) not in TRANSITIONS


def test_resets_close_every_live_state() -> None:
    for state in (OPEN, HALF_CLOSED_LOCAL, HALF_CLOSED_REMOTE):
        assert TRANSITIONS[(state, RECV_RST_STREAM)] == RESET_BY_PEER
        assert TRANSITIONS[(state, SEND_RST_STREAM)] == RESET_BY_US


def test_frame_rules_cover_every_state_without_a_stream_object() -> None:
    for frame_type in (HEADERS, DATA, WINDOW_UPDATE, RST_STREAM):
        for state in (IDLE, CLOSED, RESET_BY_PEER, RESET_BY_US, FORGOTTEN, REFUSED):
            assert (frame_type, state) in FRAME_RULES
    idle = FRAME_RULES[(DATA, IDLE)]
    assert idle.connection_error and idle.error == ErrorCode.PROTOCOL_ERROR
    late = FRAME_RULES[(DATA, RESET_BY_US)]
    assert late.error is None  # in flight when we reset it: dropped
    after_reset = FRAME_RULES[(DATA, RESET_BY_PEER)]
    assert not after_reset.connection_error and after_reset.error == ErrorCode.STREAM_CLOSED


def test_stream_repr_names_its_state() -> None:
    stream = new_stream(1, 100)
    assert stream.state == OPEN and stream.pending_bytes == 0
    stream.state = HALF_CLOSED_REMOTE
    assert "half-closed (remote)" in repr(stream)
    assert STATE_NAMES[HALF_CLOSED_LOCAL] == "half-closed (local)"


def test_take_within_one_chunk_is_a_view() -> None:
    queue = SendQueue()
    data = b"abcdefgh"
    queue.append(data)
    queue.append(b"")
    first = queue.take(3)
    assert isinstance(first, memoryview) and bytes(first) == b"abc"
    assert queue.size == 5
    assert bytes(queue.take(100)) == b"defgh"
    assert queue.size == 0 and not queue.chunks


def test_take_across_chunks() -> None:
    queue = SendQueue()
    for part in (b"ab", b"cd", b"efg"):
        queue.append(part)
    assert bytes(queue.take(5)) == b"abcde"
    assert bytes(queue.take(5)) == b"fg"


@given(st.lists(st.binary(max_size=50), max_size=10), st.lists(st.integers(1, 60), min_size=1))
def test_takes_concatenate_to_the_input(chunks: list[bytes], limits: list[int]) -> None:
    queue = SendQueue()
    for chunk in chunks:
        queue.append(chunk)
    out = bytearray()
    i = 0
    while queue.size:
        limit = limits[i % len(limits)]
        piece = queue.take(limit)
        assert 0 < len(piece) <= limit
        out += piece
        i += 1
    assert bytes(out) == b"".join(chunks)
