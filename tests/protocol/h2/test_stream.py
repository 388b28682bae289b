"""Stream state booleans and the send queue."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h2.stream import SendQueue, Stream


def test_states() -> None:
    stream = Stream(1, 100)
    assert stream.state == "open"
    stream.end_sent = True
    assert stream.state == "half-closed (local)"
    stream.remote_closed = True
    assert stream.state == "closed"
    stream.end_sent = False
    assert stream.state == "half-closed (remote)"
    assert stream.pending_bytes == 0
    assert "half-closed (remote)" in repr(stream)


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
