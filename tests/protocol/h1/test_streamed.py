"""Streamed responses' ends (protocol/h1/streamed.py): trailers in a chunked body's trailer
section, read back by h11 and by our client core; dropped where the framing has no place."""

from __future__ import annotations

import h11
import pytest

from h2books.protocol.h1 import H1ClientConnection, H1Error, H1ServerConnection, serialize_head
from h2books.protocol.h1.config import H1Config
from h2books.protocol.h1.serializer import encode_trailers

GET = b"GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n"
TRAILERS = [(b"grpc-status", b"0"), (b"Grpc-Message", b"all good")]


def streamed(head_fields: list[tuple[bytes, bytes]], request: bytes = GET) -> bytes:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(request, 0.0)
    conn.start_response(serialize_head(200, head_fields))
    conn.send_body(b"payload")
    conn.end_response(TRAILERS)
    assert not conn.must_close
    return conn.data_to_send()


def read_by_h11(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("host", "h")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    assert isinstance(client.next_event(), h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        else:
            assert isinstance(event, h11.EndOfMessage), event
            return body, [(bytes(n), bytes(v)) for n, v in event.headers]


def test_trailers_end_a_chunked_body() -> None:
    data = streamed([])
    assert data.endswith(b"7\r\npayload\r\n0\r\ngrpc-status: 0\r\nGrpc-Message: all good\r\n\r\n")
    assert read_by_h11(data) == (
        b"payload",
        [(b"grpc-status", b"0"), (b"grpc-message", b"all good")],
    )


def test_our_client_core_reads_them() -> None:
    client = H1ClientConnection()
    client.send_request(b"GET", b"/", [(b"host", b"h")])
    (response,) = client.receive_data(streamed([]), 0.0)
    assert response.body == b"payload"  # type: ignore[union-attr]
    assert response.trailers == [(b"grpc-status", b"0"), (b"grpc-message", b"all good")]  # type: ignore[union-attr]


def test_no_trailers_is_the_plain_last_chunk() -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(GET, 0.0)
    conn.start_response(serialize_head(200, []))
    conn.end_response([])
    assert conn.data_to_send().endswith(b"\r\n\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    ("fields", "first_request"),
    [
        ([(b"content-length", b"7")], GET),
        ([], b"GET / HTTP/1.0\r\n\r\n"),  # HTTP/1.0: close-delimited
    ],
    ids=["content-length", "http10"],
)
def test_trailers_are_dropped_where_the_framing_has_no_place(
    fields: list[tuple[bytes, bytes]], first_request: bytes
) -> None:
    conn = H1ServerConnection(H1Config(), 0.0)
    conn.receive_data(first_request, 0.0)
    conn.start_response(serialize_head(200, fields))
    conn.send_body(b"payload")
    conn.end_response(TRAILERS)
    data = conn.data_to_send()
    assert data.endswith(b"\r\n\r\npayload") and b"grpc" not in data


@pytest.mark.parametrize(
    "fields",
    [
        [(b"content-length", b"3")],
        [(b"Transfer-Encoding", b"chunked")],
        [(b"x-a", b"one\r\nx-b: two")],
        [(b"bad name", b"x")],
    ],
)
def test_trailers_that_cannot_be_sent_are_refused(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(H1Error):
        encode_trailers(fields)
