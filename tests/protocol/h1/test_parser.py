"""Stateless parsing helpers: each rule of RFC 9112/9110 in isolation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.parser import (
    check_head_bytes,
    keep_alive_of,
    parse_chunk_size,
    parse_content_length,
    parse_fields,
    parse_request_line,
    parse_status_line,
    target_authority,
    validate_host,
)


def status_of(call: object, *args: object) -> int:
    with pytest.raises(H1Error) as info:
        call(*args)  # type: ignore[operator]
    return info.value.status


def test_request_line() -> None:
    assert parse_request_line(b"GET /x HTTP/1.1") == (b"GET", b"/x", b"1.1")
    assert parse_request_line(b"PATCH http://h/x HTTP/1.0") == (b"PATCH", b"http://h/x", b"1.0")


def test_asterisk_only_for_options() -> None:
    assert parse_request_line(b"OPTIONS * HTTP/1.0")[1] == b"*"
    assert status_of(parse_request_line, b"POST * HTTP/1.0") == 400


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"GET / HTTP/2.0", 505),
        (b"GET / HTTP/1.2", 505),
        (b"GET / HTTP/9.9", 505),
        (b"GET / HTTP/1", 400),
        (b"GET / HTTPS/1.1", 400),
        (b"GET / HTTP/1.1x", 400),
        (b"GET / ", 400),
        (b"", 400),
        (b"GET", 400),
        (b"GET /", 400),
        (b"GET / HTTP/1.1 extra", 400),
    ],
)
def test_request_line_errors(line: bytes, status: int) -> None:
    assert status_of(parse_request_line, line) == status


def test_target_authority() -> None:
    assert target_authority(b"GET", b"/p") is None
    assert target_authority(b"GET", b"https://a.example:8443/p") == b"a.example:8443"
    assert target_authority(b"GET", b"http://[::1]/") == b"[::1]"
    assert target_authority(b"CONNECT", b"a:1") == b"a:1"
    assert target_authority(b"OPTIONS", b"*") is None


def test_status_line() -> None:
    assert parse_status_line(b"HTTP/1.1 200 OK") == (b"1.1", 200, b"OK")
    assert parse_status_line(b"HTTP/1.0 404 Not Found") == (b"1.0", 404, b"Not Found")
    assert parse_status_line(b"HTTP/1.1 204") == (b"1.1", 204, b"")
    for bad in (b"HTTP/1.1 2000 OK", b"HTTP/1.1 OK", b"HTTP/3 200 OK", b"HTTP/1.1 -20 X"):
        with pytest.raises(H1Error):
            parse_status_line(bad)


def test_check_head_bytes() -> None:
    good = b"GET / HTTP/1.1\r\nA: b\tc\xff"
    check_head_bytes(good, good.split(b"\r\n"))
    for bad in (b"a\nb", b"a\rb", b"a\r\n\nb", b"a\x00", b"a\x1b", b"a\x7f", b"a\n\rb"):
        with pytest.raises(H1Error):
            check_head_bytes(bad, bad.split(b"\r\n"))


@given(st.binary(max_size=64))
def test_check_head_bytes_matches_definition(block: bytes) -> None:
    lines = block.split(b"\r\n")
    allowed = all(
        byte == 9 or 0x20 <= byte <= 0x7E or byte >= 0x80 for line in lines for byte in line
    )
    if allowed:
        check_head_bytes(block, lines)
    else:
        with pytest.raises(H1Error):
            check_head_bytes(block, lines)


def test_parse_fields() -> None:
    headers, framing = parse_fields(
        [b"GET / HTTP/1.1", b"Host: a", b"X-Y:  v  ", b"host: b", b"Content-Length:1"]
    )
    assert headers == [(b"host", b"a"), (b"x-y", b"v"), (b"host", b"b"), (b"content-length", b"1")]
    assert framing == {b"host": [b"a", b"b"], b"content-length": [b"1"]}
    assert parse_fields([b"A: 1"], 0)[0] == [(b"a", b"1")]


@pytest.mark.parametrize(
    "line", [b"A : 1", b" A: 1", b"\tA: 1", b": 1", b"A", b'A"B: 1', b"\xe9: 1"]
)
def test_parse_fields_errors(line: bytes) -> None:
    with pytest.raises(H1Error):
        parse_fields([b"GET / HTTP/1.1", line])


def test_content_length() -> None:
    assert parse_content_length([b"0"]) == 0
    assert parse_content_length([b"123456789012345678"]) == 123456789012345678
    for bad in ([b""], [b"1", b"1"], [b"1,1"], [b"+1"], [b"1.0"], [b"1234567890123456789"]):
        with pytest.raises(H1Error):
            parse_content_length(bad)


def test_keep_alive_of() -> None:
    assert keep_alive_of(None, b"1.1") is True
    assert keep_alive_of(None, b"1.0") is False
    assert keep_alive_of([b"close"], b"1.1") is False
    assert keep_alive_of([b"keep-alive"], b"1.0") is True
    assert keep_alive_of([b"KEEP-ALIVE"], b"1.0") is True
    assert keep_alive_of([b"te"], b"1.0") is False
    assert keep_alive_of([b"te, CLOSE"], b"1.1") is False


@pytest.mark.parametrize(
    "host", [b"a", b"a.b-c_d~", b"a:80", b"a:", b"[::1]", b"[::1]:1", b"", b"%41"]
)
def test_valid_hosts(host: bytes) -> None:
    validate_host(host)


@pytest.mark.parametrize("host", [b"a b", b"a/b", b"u@a", b"[::1", b"a:b", b"a:1:2", b"a?"])
def test_invalid_hosts(host: bytes) -> None:
    with pytest.raises(H1Error):
        validate_host(host)


@pytest.mark.parametrize(
    ("line", "size"),
    [
        (b"0", 0),
        (b"a", 10),
        (b"FF", 255),
        (b"00000000000000ff", 255),
        (b"5;x", 5),
        (b"5 ; x = y ; z", 5),
        (b'5;x="a b;c\\""', 5),
        (b"5\t;x", 5),
    ],
)
def test_chunk_size(line: bytes, size: int) -> None:
    assert parse_chunk_size(line) == size


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b" 5",
        b"5 ",
        b"-5",
        b"0x5",
        b"g",
        b"5;",
        b"5;x=",
        b'5;x="unterminated',
        b"5;=y",
        b"00000000000000001",
        b"5;x\x00",
        b"5 x",
    ],
)
def test_chunk_size_errors(line: bytes) -> None:
    with pytest.raises(H1Error):
        parse_chunk_size(line)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_chunk_size_round_trip(size: int) -> None:
    assert parse_chunk_size(b"%x" % size) == size
    assert parse_chunk_size(b"%X" % size) == size
