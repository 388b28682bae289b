"""The HTTP/1.1 client connection against hand-written servers: keep-alive, framing, closes."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from h2books.client import Client, ProtocolError, RequestTimeout, Response, WireStats
from tests.client.fakes import (
    FakeServer,
    book_body,
    h1_bookstore,
    h1_response,
    read_requests,
    serving,
)

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def fetch_all(url: str, targets: list[str], **options: Any) -> list[Response]:
    async def main() -> list[Response]:
        async with Client(url, http2=False, **options) as client:
            return await asyncio.gather(*(client.get(target) for target in targets))

    return run(main())


def test_requests_go_one_at_a_time_in_order_on_one_connection() -> None:
    order: list[bytes] = []
    in_flight = {"now": 0, "peak": 0}

    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        order.append(target)
        return False

    def handler(sock: socket.socket, server: FakeServer) -> None:
        # Count requests that arrive before their predecessor was answered (pipelining).
        buffer = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return
            buffer += data
            heads = buffer.count(b"\r\n\r\n")
            in_flight["peak"] = max(in_flight["peak"], heads)
            while b"\r\n\r\n" in buffer:
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                target = head.split(b" ")[1]
                order.append(target)
                body = book_body(target.split(b"=")[-1].decode())
                time.sleep(0.001)
                sock.sendall(h1_response(200, body))

    stats = WireStats()
    targets = [f"/book?id={i}" for i in range(1, 11)]
    with serving(handler) as fake:
        responses = fetch_all(fake.url, targets, stats=stats)
    assert [r.json()["id"] for r in responses] == [str(i) for i in range(1, 11)]
    assert order == [t.encode() for t in targets]
    assert in_flight["peak"] == 1  # no pipelining
    assert stats.connections == 1
    assert {r.http_version for r in responses} == {"HTTP/1.1"}


def test_connection_close_responses_lead_to_new_connections() -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        sock.sendall(h1_response(200, b"{}", b"connection: close"))
        sock.close()
        return True

    stats = WireStats()
    with serving(h1_bookstore(behaviour)) as fake:
        responses = fetch_all(fake.url, ["/a", "/b", "/c", "/d"], stats=stats)
        connections = fake.connections
    assert [r.status for r in responses] == [200] * 4
    assert stats.connections == connections == 4


def test_chunked_and_close_delimited_bodies() -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        if target == b"/chunked":
            sock.sendall(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                b"3;ext=1\r\n[1,\r\n3\r\n 2]\r\n0\r\nx-trailer: yes\r\n\r\n"
            )
        else:
            sock.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n[3, 4]")
            sock.close()
        return True

    stats = WireStats()
    with serving(h1_bookstore(behaviour)) as fake:
        chunked, until_close = fetch_all(fake.url, ["/chunked", "/close"], stats=stats)
    assert chunked.json() == [1, 2]
    assert until_close.json() == [3, 4]
    assert stats.received.body == len(b"[1, 2]") + len(b"[3, 4]")
    # chunk-size lines and chunk CRLFs, then the last chunk and the final CRLF
    assert stats.received.framing == len(b"3;ext=1\r\n\r\n3\r\n\r\n0\r\n\r\n")


def test_head_request() -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 999\r\n\r\n")
        return True

    async def main() -> tuple[Response, Response]:
        async with Client(fake.url, http2=False) as client:
            return await client.request("HEAD", "/"), await client.request("HEAD", "/again")

    with serving(h1_bookstore(behaviour)) as fake:
        first, second = run(main())
    assert first.content == second.content == b""
    assert first.header("content-length") == "999"


def test_a_post_with_a_body() -> None:
    seen: list[bytes] = []

    def handler(sock: socket.socket, server: FakeServer) -> None:
        data = b""
        while b'"new"}' not in data:
            data += sock.recv(65536)
        seen.append(data)
        sock.sendall(h1_response(201, b"{}"))
        while sock.recv(65536):
            pass

    async def main() -> Response:
        async with Client(fake.url, http2=False) as client:
            return await client.request("POST", "/books", body=b'{"title": "new"}')

    with serving(handler) as fake:
        response = run(main())
    assert response.status == 201
    assert seen[0].startswith(b"POST /books HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"\r\ncontent-length: 16\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"title": "new"}')


def test_an_unsolicited_response_retires_the_connection() -> None:
    # The first connection answers its first request twice; the extra response must not be
    # taken as the answer to the next request, which goes to a fresh connection instead.
    def handler(sock: socket.socket, server: FakeServer) -> None:
        with server.lock:
            first_connection = server.connections == 1
        for _method, target in read_requests(sock):
            body = b'"%s"' % target
            if first_connection:
                sock.sendall(h1_response(200, body) + h1_response(200, b'"unsolicited"'))
            else:
                sock.sendall(h1_response(200, body))

    async def main() -> list[Any]:
        async with Client(fake.url, http2=False, timeout=2) as client:
            return [(await client.get(target)).json() for target in ("/one", "/two")]

    with serving(handler) as fake:
        assert run(main()) == ["/one", "/two"]
        assert fake.connections == 2


def test_a_malformed_status_line_is_a_protocol_error() -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        sock.sendall(b"HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n")
        return True

    with (
        serving(h1_bookstore(behaviour)) as fake,
        pytest.raises(
            ProtocolError, match=r"malformed HTTP/1\.1 response from .* to GET /: malformed status"
        ),
    ):
        fetch_all(fake.url, ["/"])


def test_a_stuck_response_times_out_and_the_next_request_gets_a_new_connection() -> None:
    def behaviour(sock: socket.socket, server: FakeServer, target: bytes) -> bool:
        return target == b"/stuck"  # never answered

    async def main() -> tuple[BaseException | Response, Response]:
        async with Client(fake.url, http2=False, timeout=0.2) as client:
            stuck, after = await asyncio.gather(
                client.get("/stuck"), client.get("/book?id=1"), return_exceptions=True
            )
            assert isinstance(after, Response)
            return stuck, after

    with serving(h1_bookstore(behaviour)) as fake:
        stuck, after = run(main())
        connections = fake.connections
    assert isinstance(stuck, RequestTimeout)
    assert after.json()["id"] == "1"
    assert connections == 2
