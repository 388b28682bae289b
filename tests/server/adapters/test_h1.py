"""H1ServerProtocol in process (see tests.server.inprocess).

What these pin down: answers leave in request order whether or not they went through the
queue, a body larger than BIG_BODY goes out in slices paced by the transport's
pause_writing, and the per-connection Host text is never stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from h2books.http import Request, Response
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.exchange import BIG_BODY, BODY_SLICE
from tests.server.inprocess import RecordingTransport
from tests.server.inprocess import connect as connect_protocol

BIG = bytes(range(256)) * ((3 * BIG_BODY) // 256 + 7)  # > BIG_BODY, not a whole slice count


def connect(
    handler: Callable[[Request], Response | Awaitable[Response]],
    transport: RecordingTransport,
) -> H1ServerProtocol:
    return connect_protocol(H1ServerProtocol, handler, transport)


def split_responses(data: bytes) -> list[tuple[bytes, bytes]]:
    """Content-length framed responses -> [(head, body)]."""
    out = []
    while data:
        end = data.index(b"\r\n\r\n") + 4
        head = data[:end]
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        out.append((head, data[end : end + length]))
        data = data[end + length :]
    return out


def request(target: str, host: str = "example.com", method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def test_sync_and_async_answers_keep_request_order() -> None:
    async def main() -> list[tuple[bytes, bytes]]:
        async def later(text: str) -> Response:
            await asyncio.sleep(0.01)
            return Response(200, [], text.encode())

        def handler(req: Request) -> Response | Awaitable[Response]:
            if req.path == "/slow":
                return later("slow")
            return Response(200, [], req.path.encode())

        transport = RecordingTransport()
        protocol = connect(handler, transport)
        protocol.data_received(request("/a"))  # answered at once
        protocol.data_received(request("/slow") + request("/b"))  # /b waits for /slow
        protocol.data_received(request("/c"))
        await asyncio.sleep(0.05)
        return split_responses(transport.data)

    bodies = [body for _, body in asyncio.run(main())]
    assert bodies == [b"/a", b"slow", b"/b", b"/c"]


def test_each_request_gets_its_own_host() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        def handler(req: Request) -> Response:
            seen.append(req.authority)
            return Response(200, [], b"")

        protocol = connect(handler, RecordingTransport())
        for host in ("a.example", "a.example", "b.example:8443", "a.example"):
            protocol.data_received(request("/", host))
        return seen

    assert asyncio.run(main()) == ["a.example", "a.example", "b.example:8443", "a.example"]


HIGH_WATER = 256 * 1024


def test_a_big_body_goes_out_in_slices_as_the_transport_drains() -> None:
    async def main() -> tuple[RecordingTransport, int]:
        transport = RecordingTransport(high=HIGH_WATER)
        protocol = connect(lambda req: Response(200, [], BIG), transport)
        protocol.data_received(request("/big") + request("/after"))
        await asyncio.sleep(0)
        writes_while_paused = len(transport.writes)
        for _ in range(20):  # the peer reads slowly: nothing more goes out meanwhile
            await asyncio.sleep(0)
        assert len(transport.writes) == writes_while_paused
        for _ in range(len(BIG) // BODY_SLICE + 5):
            transport.drain()
            await asyncio.sleep(0)
        return transport, writes_while_paused

    transport, first_writes = asyncio.run(main())
    # The head, the slices under the high-water mark and the one that crosses it.
    assert first_writes <= 2 + HIGH_WATER // BODY_SLICE
    assert max(len(chunk) for chunk in transport.writes) <= BODY_SLICE + 512
    responses = split_responses(transport.data)
    assert [body for _, body in responses] == [BIG, BIG]
    assert all(b"\r\ncontent-length: %d\r\n" % len(BIG) in head for head, _ in responses)


def test_head_of_a_big_body_sends_no_body() -> None:
    async def main() -> bytes:
        transport = RecordingTransport()
        protocol = connect(
            lambda req: Response(200, [], BIG if req.path == "/big" else b"x"), transport
        )
        protocol.data_received(request("/big", method="HEAD") + request("/x"))
        await asyncio.sleep(0.01)
        return transport.data

    data = asyncio.run(main())
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"\r\ncontent-length: %d\r\n" % len(BIG) in data
    assert data.endswith(b"\r\n\r\nx") and len(data) < 1024
