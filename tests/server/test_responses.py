"""Per-response caches of the encoded fixed part: a new Date swaps in, nothing else changes
(for HTTP/1.1: neither the other bytes nor the facts of the head)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from h2books.http import Response
from h2books.server.responses import h1_head, h2_fields

DATE_1 = b"Mon, 01 Jan 2024 00:00:00 GMT"
DATE_2 = b"Mon, 01 Jan 2024 00:00:01 GMT"
SERVER = b"h2books"

_fields = st.lists(
    st.sampled_from(
        [
            (b"content-type", b"text/plain"),
            (b"etag", b'"abc"'),
            (b"date", b"Sun, 31 Dec 2023 23:59:59 GMT"),  # a handler's own date field
            (b"server", b"h2books"),
            (b"content-length", b"5"),
        ]
    ),
    max_size=4,
)


def _response(status: int, fields: list[tuple[bytes, bytes]], body: bytes) -> Response:
    return Response(status, fields, body)


@given(st.sampled_from([200, 204, 304, 404]), _fields, st.sampled_from([b"", b"hello"]))
def test_h1_head_for_a_new_date_is_what_a_fresh_build_gives(
    status: int, fields: list[tuple[bytes, bytes]], body: bytes
) -> None:
    cached = _response(status, fields, body)
    first = h1_head(cached, SERVER, DATE_1)
    second = h1_head(cached, SERVER, DATE_2)
    assert second == h1_head(_response(status, fields, body), SERVER, DATE_2)
    assert first == h1_head(_response(status, fields, body), SERVER, DATE_1)
    assert h1_head(cached, SERVER, DATE_2) is second  # same date object: the cached head


@given(st.sampled_from([200, 204, 304, 404]), _fields, st.sampled_from([b"", b"hello"]))
def test_h2_fields_for_a_new_date_are_what_a_fresh_build_gives(
    status: int, fields: list[tuple[bytes, bytes]], body: bytes
) -> None:
    cached = _response(status, fields, body)
    h2_fields(cached, SERVER, DATE_1)
    second = h2_fields(cached, SERVER, DATE_2)
    assert second == h2_fields(_response(status, fields, body), SERVER, DATE_2)
    assert h2_fields(cached, SERVER, DATE_2) is second


def test_another_server_name_rebuilds_the_head() -> None:
    response = Response(200, [(b"content-type", b"text/plain")], b"x")
    h1_head(response, SERVER, DATE_1)
    other = h1_head(response, b"other", DATE_2)
    assert b"\r\nserver: other\r\n" in other.data and b"h2books" not in other.data
    h2_fields(response, SERVER, DATE_1)
    assert (b"server", b"other") in h2_fields(response, b"other", DATE_2)


def test_another_servers_alt_svc_is_never_reused() -> None:
    """One Response (a precomputed answer, an ASGI head's template) served by two servers
    in one process: each answer carries its own server's alt-svc, whether the date is new
    or the same object."""
    response = Response(200, [(b"content-type", b"text/plain")], b"x")
    h3_here = b'h3=":8443"; ma=86400'
    h2_fields(response, SERVER, DATE_1, h3_here)
    assert (b"alt-svc", h3_here) not in h2_fields(response, SERVER, DATE_2, None)
    assert (b"alt-svc", h3_here) not in h2_fields(response, SERVER, DATE_2, None)
    assert (b"alt-svc", h3_here) in h2_fields(response, SERVER, DATE_2, h3_here)
    h1_head(response, SERVER, DATE_1, h3_here)
    assert b"alt-svc" not in h1_head(response, SERVER, DATE_2, None).data
    assert b"alt-svc" not in h1_head(response, SERVER, DATE_2, None).data
    assert b"alt-svc" in h1_head(response, SERVER, DATE_1, h3_here).data
