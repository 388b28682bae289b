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
from tests.server.inprocess import RecordingTransport, until
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
        release = asyncio.Event()

        async def later(text: str) -> Response:
            await release.wait()
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
        await asyncio.sleep(0)
        assert len(split_responses(transport.data)) == 1  # only /a: the rest wait
        release.set()
        await until(lambda: len(split_responses(transport.data)) == 4)
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


def test_a_read_of_more_requests_than_the_pipelining_bound_is_all_answered() -> None:
    # The core parses up to max_pipelined (32) requests and holds the rest back; answered
    # inline, those leave nothing owed, and the rest of the read must be parsed then, not
    # wait for the peer's next read (which never comes: it waits for these answers).
    async def main() -> list[tuple[bytes, bytes]]:
        transport = RecordingTransport()
        protocol = connect(lambda req: Response(200, [], req.path.encode()), transport)
        protocol.data_received(b"".join(request(f"/{i}") for i in range(80)))
        return split_responses(transport.data)

    bodies = [body for _, body in asyncio.run(main())]
    assert bodies == [f"/{i}".encode() for i in range(80)]


def test_a_closing_answer_among_held_back_requests_closes() -> None:
    # The first answer says close while a later request still waits for its (async)
    # answer: what the core held back is never parsed, the read's callback returns, and
    # the connection closes once nothing is owed.
    async def main() -> RecordingTransport:
        transport = RecordingTransport()
        release = asyncio.Event()

        async def later() -> Response:
            await release.wait()
            return Response(200, [])

        def handler(req: Request) -> Response | Awaitable[Response]:
            if req.path == "/0":
                return Response(200, [(b"connection", b"close")])
            return later()

        protocol = connect(handler, transport)
        protocol.data_received(b"".join(request(f"/{i}") for i in range(40)))
        release.set()
        await until(lambda: transport.closed)
        return transport

    transport = asyncio.run(main())
    assert len(split_responses(transport.data)) == 1


def test_a_request_after_a_refused_upgrade_in_the_same_read_is_answered() -> None:
    # The core holds back what follows an Upgrade request until the upgrade is answered;
    # refused (answered as a plain request), the rest of the read must be parsed then.
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n"
    )

    async def main() -> list[tuple[bytes, bytes]]:
        transport = RecordingTransport()
        protocol = connect(lambda req: Response(200, [], req.path.encode()), transport)
        protocol.data_received(upgrade + request("/after"))
        return split_responses(transport.data)

    bodies = [body for _, body in asyncio.run(main())]
    assert bodies == [b"/ws", b"/after"]


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
        await until(lambda: transport.data.endswith(b"x"))
        return transport.data

    data = asyncio.run(main())
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"\r\ncontent-length: %d\r\n" % len(BIG) in data
    assert data.endswith(b"\r\n\r\nx") and len(data) < 1024


def test_the_cores_timeout_rules_close_the_transport() -> None:
    """The server's timer asks the core; the adapter closes the way the rule says."""

    async def main() -> tuple[bool, bool, bool, bool]:
        idle = RecordingTransport()
        idle_protocol = connect(lambda req: Response(200, [], b""), idle)
        slow = RecordingTransport()
        slow_protocol = connect(lambda req: Response(200, [], b""), slow)
        slow_protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        now = asyncio.get_running_loop().time()
        timeouts = idle_protocol.state.config.timeouts
        idle_protocol.check_timeouts(now + timeouts.keep_alive - 0.5)
        slow_protocol.check_timeouts(now + timeouts.request_head - 0.5)
        before = idle.closed, slow.closed
        idle_protocol.check_timeouts(now + timeouts.keep_alive + 0.5)
        slow_protocol.check_timeouts(now + timeouts.request_head + 0.5)
        return (*before, idle.closed, slow.closed)

    idle_early, slow_early, idle_late, slow_late = asyncio.run(main())
    assert not idle_early and not slow_early
    assert idle_late and slow_late


def test_graceful_shutdown_answers_what_was_received_then_closes() -> None:
    async def main() -> tuple[bytes, bool]:
        transport = RecordingTransport()
        release = asyncio.Event()

        async def handler(req: Request) -> Response:
            await release.wait()
            return Response(200, [], b"late")

        protocol = connect(handler, transport)
        protocol.data_received(request("/a"))
        await asyncio.sleep(0)
        protocol.shutdown()
        still_open = not transport.closed
        release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert still_open
        return transport.data, transport.closed

    data, closed = asyncio.run(main())
    assert data.endswith(b"late") and b"connection: close" in data.lower()
    assert closed
