"""serialize_head, error responses, and reading a runtime-built head back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h1 import H1Error, serialize_head
from h2books.protocol.h1.serializer import HeadInfo, error_response


def test_serialize_head() -> None:
    assert serialize_head(200, [(b"content-type", b"text/html"), (b"X-A", b"b c")]) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\nX-A: b c\r\n"
    )


def test_serialize_head_accepts_generators_and_tuples() -> None:
    fields = ((b"a", b"%d" % i) for i in range(2))
    assert serialize_head(404, fields) == b"HTTP/1.1 404 Not Found\r\na: 0\r\na: 1\r\n"
    assert serialize_head(204, ()) == b"HTTP/1.1 204 No Content\r\n"


def test_reason_override_and_unknown_status() -> None:
    assert serialize_head(200, [], b"Fine") == b"HTTP/1.1 200 Fine\r\n"
    assert serialize_head(299, []) == b"HTTP/1.1 299 \r\n"
    assert serialize_head(418, [], b"") == b"HTTP/1.1 418 \r\n"


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


def test_head_info() -> None:
    info = HeadInfo(
        b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: Keep-Alive, Close\r\n"
        b"Transfer-Encoding: chunked\r\n"
    )
    assert info.status == 200
    assert info.has_content_length
    assert info.content_length() == 12
    assert info.close
    assert info.has_connection
    assert info.transfer_encoding == b"chunked"
    plain = HeadInfo(b"HTTP/1.1 404 Not Found\r\nX-Content-Length: 3\r\n")
    assert not plain.has_content_length
    assert not plain.has_connection
    assert plain.transfer_encoding is None


def test_head_info_invalid_content_length() -> None:
    with pytest.raises(H1Error):
        HeadInfo(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n").content_length()
