"""serialize_head: the bytes of a response head and its facts; error responses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h1 import H1Error, serialize_head
from h2books.protocol.h1.framing import CHUNKED, FIXED, UNTIL_CLOSE
from h2books.protocol.h1.serializer import ResponseHead, error_response


def test_serialize_head() -> None:
    assert serialize_head(200, [(b"content-type", b"text/html"), (b"X-A", b"b c")]).data == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nX-A: b c\r\n\r\n"
    )


def test_serialize_head_accepts_generators_and_tuples() -> None:
    fields = ((b"a", b"%d" % i) for i in range(2))
    assert serialize_head(404, fields).data == b"HTTP/1.1 404 Not Found\r\na: 0\r\na: 1\r\n\r\n"
    assert serialize_head(204, ()).data == b"HTTP/1.1 204 No Content\r\n\r\n"


def test_reason_override_and_unknown_status() -> None:
    assert serialize_head(200, [], b"Fine").data == b"HTTP/1.1 200 Fine\r\n\r\n"
    assert serialize_head(299, []).data == b"HTTP/1.1 299 \r\n\r\n"
    assert serialize_head(418, [], b"").data == b"HTTP/1.1 418 \r\n\r\n"


@pytest.mark.parametrize("status", [0, 99, 1000, -200])
def test_invalid_status(status: int) -> None:
    with pytest.raises(H1Error):
        serialize_head(status, [])


@pytest.mark.parametrize(
    "field",
    [
        (b"x", b"a\r\nInjected: yes"),
        (b"x", b"a\nb"),
        (b"x", b"a\rb"),
        (b"x", b"a\x00b"),
        (b"x", b"a\x1fb"),
        (b"x\r\ny", b"v"),
        (b"x\ny", b"v"),
        (b"x\x00", b"v"),
        (b"x y", b"v"),
        (b"x:", b"v"),
        (b"", b"v"),
    ],
)
def test_rejects_unsafe_fields(field: tuple[bytes, bytes]) -> None:
    with pytest.raises(H1Error):
        serialize_head(200, [(b"ok", b"fine"), field])


def test_rejects_control_chars_in_reason() -> None:
    with pytest.raises(H1Error):
        serialize_head(200, [], b"OK\r\nX: y")


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=8).filter(
                lambda b: b"\r" in b or b"\n" in b or b"\0" in b
            ),
            st.binary(max_size=8),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_never_emits_crlf_from_names(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(H1Error):
        serialize_head(200, fields)


def test_error_response() -> None:
    out = error_response(431, "too big")
    assert out == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: text/plain; charset=utf-8\r\ncontent-length: 8\r\n"
        b"connection: close\r\n\r\ntoo big\n"
    )
    assert error_response(431, "too big", head_only=True) == out[: -len(b"too big\n")]


# -- the facts ---------------------------------------------------------------------------


def test_plain_head_leaves_the_framing_to_the_core() -> None:
    head = serialize_head(200, [(b"content-type", b"text/plain"), (b"x-content-length", b"3")])
    assert head == ResponseHead(head.data, 200, UNTIL_CLOSE, -1, False, False)
    assert not head.no_body
    assert not head.informational


def test_content_length_fact() -> None:
    head = serialize_head(200, [(b"Content-Length", b" 12 ")])
    assert (head.framing, head.length) == (FIXED, 12)
    # A handler's Content-Length beside the runtime's, with the same value, is one length.
    twice = serialize_head(200, [(b"Content-Length", b"7"), (b"content-length", b"7")])
    assert (twice.framing, twice.length) == (FIXED, 7)


@pytest.mark.parametrize(
    "values", [[b"x"], [b""], [b"-1"], [b"1, 1"], [b"1", b"2"], [b"1234567890123456789"]]
)
def test_invalid_content_length_is_refused(values: list[bytes]) -> None:
    with pytest.raises(H1Error):
        serialize_head(200, [(b"content-length", value) for value in values])


def test_chunked_fact() -> None:
    for value in (b"chunked", b"Chunked", b" chunked "):
        head = serialize_head(200, [(b"Transfer-Encoding", value)])
        assert (head.framing, head.length) == (CHUNKED, -1)


@pytest.mark.parametrize(
    "fields",
    [
        [(b"transfer-encoding", b"gzip")],
        [(b"transfer-encoding", b"gzip, chunked")],
        [(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")],
        [(b"transfer-encoding", b"chunked"), (b"content-length", b"3")],
    ],
)
def test_framing_the_core_cannot_send_is_refused(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(H1Error):
        serialize_head(200, fields)


@pytest.mark.parametrize(
    ("values", "close"),
    [
        ([b"close"], True),
        ([b"Keep-Alive, Close"], True),
        ([b"keep-alive"], False),
        ([b"upgrade", b"CLOSE"], True),
        ([b"closed"], False),
    ],
)
def test_connection_facts(values: list[bytes], close: bool) -> None:
    head = serialize_head(200, [(b"Connection", value) for value in values])
    assert head.has_connection
    assert head.close is close
    assert head.framing == UNTIL_CLOSE


@pytest.mark.parametrize(
    ("status", "no_body"),
    [(100, True), (103, True), (204, True), (304, True), (200, False), (205, False)],
)
def test_status_facts(status: int, no_body: bool) -> None:
    head = serialize_head(status, [])
    assert head.status == status
    assert head.no_body is no_body
    assert head.informational is (status < 200)


def test_with_data_keeps_the_facts() -> None:
    head = serialize_head(200, [(b"content-length", b"3"), (b"connection", b"close")])
    other = head.with_data(
        b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\nx: y\r\n\r\n"
    )
    assert other.data != head.data
    assert (other.status, other.framing, other.length, other.close, other.has_connection) == (
        200,
        FIXED,
        3,
        True,
        True,
    )
