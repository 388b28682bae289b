"""Differential tests: our server parser against httptools (llhttp) and h11."""

from __future__ import annotations

import h11
import httptools
from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.protocol.h1 import H1Config, H1ServerConnection, RequestReceived

from .strategies import bodies, fields, methods, targets


def build(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: example.com"]
    lines += [name + b": " + value for name, value in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        step = max(1, len(body) // 3)
        encoded = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + step]), body[i : i + step])
            for i in range(0, len(body), step)
        )
        payload = encoded + b"0\r\n\r\n"
    else:
        if body or method == b"POST":
            lines.append(b"Content-Length: %d" % len(body))
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


def ours(data: bytes) -> RequestReceived:
    events = H1ServerConnection(H1Config(), 0.0).receive_data(data, 0.0)
    assert len(events) == 1, events
    assert isinstance(events[0], RequestReceived)
    return events[0]


class _Collector:
    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.complete = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.strip(b" \t")))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


def via_httptools(data: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    collector = _Collector()
    parser = httptools.HttpRequestParser(collector)
    parser.feed_data(data)
    assert collector.complete
    return parser.get_method(), collector.url, collector.headers, collector.body


def via_h11(data: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    request = conn.next_event()
    assert isinstance(request, h11.Request)
    body = b""
    while True:
        event = conn.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        else:
            assert isinstance(event, h11.EndOfMessage)
            break
    headers = [(bytes(name), bytes(value)) for name, value in request.headers]
    return bytes(request.method), bytes(request.target), headers, body


# llhttp only knows registered methods; h11 takes any token.
known_methods = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"])


@settings(max_examples=300)
@given(known_methods, targets, fields, bodies, st.booleans())
def test_same_as_httptools(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool
) -> None:
    data = build(method, target, headers, body, chunked)
    request = ours(data)
    assert (request.method, request.target, request.headers, request.body) == via_httptools(data)


@settings(max_examples=300)
@given(methods, targets, fields, bodies, st.booleans())
def test_same_as_h11(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool
) -> None:
    data = build(method, target, headers, body, chunked)
    request = ours(data)
    assert (request.method, request.target, request.headers, request.body) == via_h11(data)
