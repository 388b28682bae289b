"""MessageReader: buffering, incremental search, limits."""

from __future__ import annotations

import pytest

from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.reader import MessageReader


def reader(**limits: int) -> MessageReader:
    return MessageReader(H1Config(**limits), 414)


def test_whole_head_is_parsed_without_copying_the_input() -> None:
    r = reader()
    data = b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest"
    r.feed(data)
    assert r.read_head() == [b"GET / HTTP/1.1", b"A: b"]
    assert r.buffered == 4
    assert r._buf is data  # the fast path keeps the caller's bytes


def test_partial_input_is_kept_in_a_growing_bytearray() -> None:
    r = reader()
    r.feed(b"GET / HT")
    assert r.read_head() is None
    r.feed(b"TP/1.1\r\n")
    assert isinstance(r._buf, bytearray)
    assert r.read_head() is None
    r.feed(b"\r\n")
    assert r.read_head() == [b"GET / HTTP/1.1"]
    assert r.buffered == 0


def test_search_resumes_where_it_stopped() -> None:
    r = reader()
    r.feed(b"GET / HTTP/1.1\r\nX: ")
    for _ in range(1000):
        assert r.read_head() is None
        assert r._scan == len(r._buf)  # everything fed so far has been searched once
        r.feed(b"y")
    r.feed(b"\r\n\r\n")
    lines = r.read_head()
    assert lines is not None
    assert lines[1] == b"X: " + b"y" * 1000


def test_terminator_split_across_feeds() -> None:
    data = b"GET / HTTP/1.1\r\n\r\n"
    for cut in range(1, len(data)):
        r = reader()
        r.feed(data[:cut])
        assert r.read_head() is None
        r.feed(data[cut:])
        assert r.read_head() == [b"GET / HTTP/1.1"]


def test_bare_lf_detected_before_head_completes() -> None:
    r = reader()
    r.feed(b"GET / HTTP/1.1\r")
    assert r.read_head() is None
    r.feed(b"\nHost: x\n")
    with pytest.raises(H1Error, match="bare LF"):
        r.read_head()


def test_crlf_split_between_feeds_is_not_bare() -> None:
    r = reader()
    r.feed(b"GET / HTTP/1.1\r")
    assert r.read_head() is None
    r.feed(b"\nHost: x\r")
    assert r.read_head() is None
    r.feed(b"\n")
    assert r.read_head() is None


def test_fixed_body_across_feeds() -> None:
    r = reader()
    r.feed(b"abc")
    assert r.read_fixed(5) is None
    r.feed(b"de")
    assert r.read_fixed(5) == b"abcde"
    assert r.read_fixed(0) == b""


def test_chunked_body_across_feeds() -> None:
    data = b"3\r\nabc\r\n10\r\n" + b"x" * 16 + b"\r\n0\r\nT: v\r\n\r\nNEXT"
    for cut in range(1, len(data)):
        r = reader()
        r.start_chunked()
        r.feed(data[:cut])
        body = r.read_chunked()
        assert (body is not None) == (cut >= len(data) - 4)
        r.feed(data[cut:])
        if body is None:
            body = r.read_chunked()
        assert body == b"abc" + b"x" * 16
        assert r.buffered == 4


def test_chunked_trailer_limits() -> None:
    r = reader(max_header_count=2)
    r.start_chunked()
    r.feed(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
    with pytest.raises(H1Error) as info:
        r.read_chunked()
    assert info.value.status == 431
    r = reader(max_header_bytes=20)
    r.start_chunked()
    r.feed(b"0\r\nA: " + b"1" * 30)
    with pytest.raises(H1Error) as info:
        r.read_chunked()
    assert info.value.status == 431


def test_until_close_body() -> None:
    r = reader(max_body_size=10)
    r.feed(b"12345")
    assert r.read_until_close() == 5
    r.feed(b"678")
    r.read_until_close()
    assert r.finish_until_close() == b"12345678"
    r.feed(b"x" * 11)
    with pytest.raises(H1Error):
        r.read_until_close()


def test_only_empty_lines_left() -> None:
    r = reader()
    assert r.only_empty_lines_left()
    r.feed(b"\r\n\r")
    assert r.only_empty_lines_left()
    r.feed(b"G")
    assert not r.only_empty_lines_left()
