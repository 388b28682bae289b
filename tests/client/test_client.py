"""The library API: `h2books.Client` against the real server and against small fakes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine
from typing import Any, TypeVar

import h2.events
import pytest

import h2books
from h2books.client import (
    Client,
    ConnectError,
    RemoteClosedError,
    Response,
    TLSError,
    WireStats,
)
from tests.client.fakes import H2Session, book_body, h1_bookstore, h2_bookstore, serving
from tests.conftest import ServerProcess

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def test_client_is_exported_at_the_top_level() -> None:
    assert h2books.Client is Client


@pytest.mark.parametrize("http2", [True, False])
def test_get_a_book_over_tls(server: ServerProcess, http2: bool) -> None:
    async def main() -> Response:
        async with Client(server.url, http2=http2, cacert=server.ca) as client:
            return await client.get("/book?id=1")

    response = run(main())
    assert response.status == 200
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert isinstance(response.content, bytes)
    book = response.json()
    assert isinstance(book, dict) and book["title"]
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in response.headers)
    assert response.header("content-type") == "application/json; charset=utf-8"
    assert response.header(b"Content-Type") == "application/json; charset=utf-8"
    assert response.header("x-missing") is None
    assert "200" in repr(response) and "/book?id=1" in repr(response)


def test_many_concurrent_gets_share_one_h2_connection(server: ServerProcess) -> None:
    stats = WireStats()

    async def main() -> tuple[Response, list[Response]]:
        async with Client(server.url, cacert=server.ca, stats=stats) as client:
            index = await client.get("/")
            books = index.json()[:300]
            return index, await asyncio.gather(*(client.get(f"/book?id={i}") for i in books))

    index, responses = run(main())
    assert len(responses) == 300
    assert {r.status for r in responses} == {200}
    assert stats.connections == 1
    # Every body byte was seen on the wire, and nothing else counted as body.
    assert stats.received.body == len(index.content) + sum(len(r.content) for r in responses)


def test_h1_keep_alive_uses_one_connection(server: ServerProcess) -> None:
    stats = WireStats()

    async def main() -> list[int]:
        async with Client(server.http_url, http2=False, stats=stats) as client:
            return [(await client.get(f"/book?id={i}")).status for i in range(1, 21)]

    assert run(main()) == [200] * 20
    assert stats.connections == 1


def test_h2c_with_prior_knowledge(server: ServerProcess) -> None:
    async def main() -> Response:
        async with Client(server.http_url, http2=True) as client:
            return await client.get("/hello")

    response = run(main())
    assert response.http_version == "HTTP/2"
    assert response.content == b"hello world (in HTTP2)"


def test_refused_connection_raises_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        async with Client(f"http://127.0.0.1:{port}"):
            pass

    with pytest.raises(ConnectError, match=f"connection to 127.0.0.1:{port} refused"):
        run(main())


def test_unknown_ca_raises_tls_error(server: ServerProcess) -> None:
    async def main() -> None:
        async with Client(server.url):
            pass

    with pytest.raises(TLSError, match=r"certificate verify failed.*--cacert"):
        run(main())


def test_lazy_connect_reports_the_error_on_the_request() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        client = Client(f"http://127.0.0.1:{port}", http2=False)
        try:
            await client.get("/")
        finally:
            await client.aclose()

    with pytest.raises(ConnectError, match="refused"):
        run(main())


def test_extra_headers_and_user_agent_are_sent() -> None:
    seen: list[dict[bytes, bytes]] = []

    def handler(sock: socket.socket, server: Any) -> None:
        session = H2Session(sock, server)
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                seen.append(dict(event.headers))
                session.answer(event.stream_id, 200, b"{}")
                session.flush()

    async def main() -> None:
        async with Client(fake.url, headers=[("X-Trace", "abc"), (b"accept", b"*/*")]) as client:
            await client.get("/")
            await client.get("/", headers={"x-one-off": "1"}.items())

    with serving(handler) as fake:
        run(main())
    first, second = seen
    assert first[b"x-trace"] == b"abc"
    assert first[b"accept"] == b"*/*"
    assert first[b"user-agent"] == f"h2books/{h2books.__version__}".encode()
    assert first[b":authority"] == f"127.0.0.1:{fake.port}".encode()
    assert first[b":scheme"] == b"http"
    assert b"x-one-off" not in first
    assert second[b"x-one-off"] == b"1"


def test_a_user_agent_of_ones_own_replaces_ours() -> None:
    seen: list[bytes] = []

    def handler(sock: socket.socket, server: Any) -> None:
        data = sock.recv(65536)
        seen.append(data)
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        while sock.recv(65536):
            pass

    async def main() -> None:
        async with Client(fake.url, http2=False, headers=[("User-Agent", "me")]) as client:
            await client.get("/")

    with serving(handler) as fake:
        run(main())
    assert b"\r\nuser-agent: me\r\n" in seen[0]
    assert seen[0].count(b"user-agent") == 1


def test_request_with_a_body_and_other_methods() -> None:
    received: list[tuple[bytes, bytes]] = []

    def handler(sock: socket.socket, server: Any) -> None:
        session = H2Session(sock, server)
        bodies: dict[int, bytes] = {}
        methods: dict[int, bytes] = {}
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                methods[event.stream_id] = dict(event.headers)[b":method"]
                bodies[event.stream_id] = b""
            elif isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] += event.data
                session.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )
            elif isinstance(event, h2.events.StreamEnded):
                received.append((methods[event.stream_id], bodies[event.stream_id]))
                session.answer(event.stream_id, 201, b'{"ok": true}')
            session.flush()

    async def main() -> Response:
        async with Client(fake.url) as client:
            return await client.request("POST", "/books", body=b'{"title": "new"}')

    with serving(handler) as fake:
        response = run(main())
    assert response.status == 201
    assert response.method == "POST"
    assert received == [(b"POST", b'{"title": "new"}')]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="scheme"):
        Client("ftp://example.org")
    with pytest.raises(ValueError, match="connections"):
        Client("http://localhost", connections=0)
    with pytest.raises(ValueError, match="timeout"):
        Client("http://localhost", timeout=0)

    async def main() -> None:
        client = Client("http://localhost:1")
        with pytest.raises(ValueError, match="must be a path"):
            client.submit("GET", "book?id=1")
        await client.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            client.submit("GET", "/")

    run(main())


def test_aclose_cancels_what_is_waiting() -> None:
    async def main() -> tuple[bool, bool]:
        client = Client(fake.url, timeout=None)
        await client.connect()
        pending = client.submit("GET", "/book?id=1")
        await asyncio.sleep(0.05)
        await client.aclose()
        return pending.cancelled(), client.closed

    with serving(h2_bookstore(lambda session, sid, path: True)) as fake:  # answers nothing
        assert run(main()) == (True, True)


def test_h1_server_closing_between_requests_is_retried_on_a_new_connection() -> None:
    # The server answers one request per connection without announcing `connection: close`:
    # the client's next request races the close and must be moved, not failed.
    def handler(sock: socket.socket, server: Any) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        target = data.split(b" ")[1]
        body = book_body(target.split(b"=")[1].decode())
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))

    async def main() -> list[Any]:
        async with Client(fake.url, http2=False) as client:
            results = []
            for i in range(1, 6):
                results.append((await client.get(f"/book?id={i}")).json()["id"])
            return results

    with serving(handler) as fake:
        assert run(main()) == ["1", "2", "3", "4", "5"]


def test_h1_request_cut_off_mid_body_is_remote_closed() -> None:
    def behaviour(sock: socket.socket, server: Any, target: bytes) -> bool:
        sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{")
        sock.shutdown(socket.SHUT_WR)
        return True

    async def main() -> None:
        async with Client(fake.url, http2=False) as client:
            await client.get("/book?id=1")

    with (
        serving(h1_bookstore(behaviour)) as fake,
        pytest.raises(
            RemoteClosedError, match=r"before the response to GET /book\?id=1 was complete"
        ),
    ):
        run(main())


# -- send: the response to a callback -----------------------------------------------------


@pytest.mark.parametrize("http2", [True, False])
def test_send_calls_back_with_each_response_and_may_send_the_next(
    server: ServerProcess, http2: bool
) -> None:
    """Each callback sends the next request from inside the read that completed the
    previous response: a chain of 40, every response whole and named after its request."""

    async def main() -> list[tuple[Response | None, BaseException | None]]:
        answers: list[tuple[Response | None, BaseException | None]] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        async with Client(server.url, http2=http2, cacert=server.ca) as client:

            def on_answer(response: Response | None, error: BaseException | None) -> None:
                answers.append((response, error))
                if len(answers) < 40:
                    client.send(b"GET", f"/book?id={len(answers) + 1}", on_answer)
                else:
                    done.set_result(None)

            client.send("GET", "/book?id=1", on_answer)
            await done
        return answers

    answers = run(main())
    assert [error for _, error in answers] == [None] * 40
    responses = [response for response, _ in answers]
    assert all(r is not None and r.status == 200 and r.json()["title"] for r in responses)
    assert [r.target for r in responses if r is not None] == [f"/book?id={i}" for i in range(1, 41)]
    assert {r.method for r in responses if r is not None} == {"GET"}


@pytest.mark.parametrize("http2", [True, False])
def test_a_callback_that_raises_is_reported_and_the_connection_serves_on(
    server: ServerProcess, http2: bool
) -> None:
    """The first callback raises: the loop's exception handler gets it, and the other
    requests on the same connection still get their answers."""

    async def main() -> tuple[list[dict[str, object]], list[int]]:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        statuses: list[int] = []
        all_in: asyncio.Future[None] = loop.create_future()

        def failing(response: Response | None, error: BaseException | None) -> None:
            raise RuntimeError("a bug in the caller's callback")

        def counting(response: Response | None, error: BaseException | None) -> None:
            assert response is not None, error
            statuses.append(response.status)
            if len(statuses) == 5:
                all_in.set_result(None)

        async with Client(server.url, http2=http2, cacert=server.ca) as client:
            client.send("GET", "/book?id=1", failing)
            for book in range(2, 7):
                client.send("GET", f"/book?id={book}", counting)
            await asyncio.wait_for(all_in, 10)
        return reported, statuses

    reported, statuses = run(main())
    assert statuses == [200] * 5
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)
    assert "GET /book?id=1" in str(reported[0]["message"])


def test_send_reports_a_failure_to_the_callback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> tuple[Response | None, BaseException | None]:
        answer: asyncio.Future[tuple[Response | None, BaseException | None]]
        answer = asyncio.get_running_loop().create_future()
        client = Client(f"http://127.0.0.1:{port}")
        try:
            client.send("GET", "/", lambda response, error: answer.set_result((response, error)))
            return await answer
        finally:
            await client.aclose()

    response, error = run(main())
    assert response is None
    assert isinstance(error, ConnectError) and "refused" in str(error)


def test_aclose_gives_the_callbacks_waiting_a_cancellation() -> None:
    async def main() -> list[tuple[Response | None, BaseException | None]]:
        answers: list[tuple[Response | None, BaseException | None]] = []
        client = Client(fake.url, timeout=None)
        await client.connect()
        client.send("GET", "/book?id=1", lambda response, error: answers.append((response, error)))
        await asyncio.sleep(0.05)
        assert answers == []
        await client.aclose()
        return answers

    with serving(h2_bookstore(lambda session, sid, path: True)) as fake:  # answers nothing
        answers = run(main())
    assert len(answers) == 1
    assert answers[0][0] is None and isinstance(answers[0][1], asyncio.CancelledError)
