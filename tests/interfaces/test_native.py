"""The handler API through the real server: sync, async, streaming, request bodies, errors.

The server runs in a thread of this process (its own event loop, real sockets, real TLS);
the clients are httpx over HTTP/2 and HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from h2books.http import Request, Response
from h2books.interfaces.native import NativeInterface
from tests.threaded_server import ThreadedServer

CHUNK = b"x" * 65536
CHUNKS = 64  # 4 MiB streamed


async def _chunks() -> AsyncIterator[bytes]:
    for _ in range(CHUNKS):
        await asyncio.sleep(0)
        yield CHUNK


async def _failing_stream() -> AsyncIterator[bytes]:
    yield b"partial"
    raise RuntimeError("the body broke")


def handler(request: Request) -> Response | object:
    if request.path == "/sync":
        return Response(200, [(b"content-type", b"text/plain")], b"sync " + request.method.encode())
    if request.path == "/async":

        async def later() -> Response:
            await asyncio.sleep(0.01)
            return Response(
                200, [(b"content-type", b"text/plain")], f"async {request.query}".encode()
            )

        return later()
    if request.path == "/echo":
        return Response(
            200,
            [
                (b"content-type", b"application/octet-stream"),
                (b"x-http-version", request.http_version.encode()),
            ],
            request.body,
        )
    if request.path == "/stream":
        return Response(200, [(b"content-type", b"application/octet-stream")], stream=_chunks())
    if request.path == "/broken-stream":
        return Response(200, [(b"content-type", b"text/plain")], stream=_failing_stream())
    if request.path == "/raise":
        raise ValueError("handler bug")
    if request.path == "/raise-async":

        async def broken() -> Response:
            raise ValueError("async handler bug")

        return broken()
    if request.path == "/not-a-response":
        return 42
    if request.path == "/headers":
        body = "\n".join(f"{n.decode()}: {v.decode()}" for n, v in request.headers).encode()
        return Response(200, [(b"content-type", b"text/plain")], body)
    return Response(404, [], b"")


@pytest.fixture(scope="module")
def threaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("handlers"), NativeInterface(handler)) as server:
        yield server


@pytest.fixture(params=["h2", "h1"])
def client(request: pytest.FixtureRequest, threaded: ThreadedServer) -> Iterator[httpx.Client]:
    http2 = request.param == "h2"
    context = ssl.create_default_context(cafile=str(threaded.ca))
    with httpx.Client(
        http2=http2,
        http1=not http2,
        verify=context,
        base_url=f"https://localhost:{threaded.tls_port}",
    ) as c:
        yield c


def test_sync_handler(client: httpx.Client) -> None:
    r = client.get("/sync")
    assert r.status_code == 200 and r.text == "sync GET"


def test_async_handler(client: httpx.Client) -> None:
    r = client.get("/async?n=7")
    assert r.status_code == 200 and r.text == "async n=7"


def test_request_body_arrives_whole(client: httpx.Client) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB: several flow-control windows on h2
    r = client.post("/echo", content=payload)
    assert r.status_code == 200 and r.content == payload


def test_chunked_request_body(client: httpx.Client) -> None:
    def parts() -> Iterator[bytes]:
        for i in range(10):
            yield bytes([i]) * 1000

    r = client.post("/echo", content=parts())
    assert r.content == b"".join(bytes([i]) * 1000 for i in range(10))


def test_streaming_response(client: httpx.Client) -> None:
    with client.stream("GET", "/stream") as r:
        size = sum(len(part) for part in r.iter_bytes())
    assert r.status_code == 200 and size == CHUNK.__len__() * CHUNKS


def test_handler_exception_is_500(client: httpx.Client) -> None:
    assert client.get("/raise").status_code == 500
    assert client.get("/raise-async").status_code == 500
    assert client.get("/not-a-response").status_code == 500
    assert client.get("/sync").status_code == 200  # and the connection still serves


def test_broken_stream_is_cut_not_completed(client: httpx.Client) -> None:
    with pytest.raises(httpx.HTTPError), client.stream("GET", "/broken-stream") as r:
        b"".join(r.iter_bytes())
    # a new connection is served normally
    assert client.get("/sync").status_code == 200


def test_request_headers_reach_the_handler(client: httpx.Client) -> None:
    r = client.get("/headers", headers={"x-thing": "one", "cookie": "a=1"})
    lines = r.text.splitlines()
    assert "x-thing: one" in lines and "cookie: a=1" in lines


def test_body_too_large_is_413(threaded: ThreadedServer) -> None:
    context = ssl.create_default_context(cafile=str(threaded.ca))
    limit = threaded.config.limits.max_body_size
    with httpx.Client(http2=True, verify=context) as c:
        r = c.post(f"https://localhost:{threaded.tls_port}/echo", content=b"z" * (limit + 1))
    assert r.status_code == 413


def test_cleartext_h1_echo(threaded: ThreadedServer) -> None:
    with httpx.Client() as c:
        r = c.post(f"http://127.0.0.1:{threaded.http_port}/echo", content=b"plain")
    assert r.content == b"plain" and r.headers["x-http-version"] == "1.1"


def test_concurrent_uploads_beyond_the_body_budget_all_finish(threaded: ThreadedServer) -> None:
    """Three 3 MiB bodies on one h2 connection: more than the 4 MiB a connection may hold
    for its handlers, so window credit is held back; every upload must still complete
    (the oldest body is always credited, and the next oldest once it finishes)."""
    from h2books.client import Client

    payloads = [bytes([i]) * (3 * 1024 * 1024) for i in range(3)]

    async def upload_all() -> list[bytes]:
        url = f"https://localhost:{threaded.tls_port}"
        async with Client(url, http2=True, cacert=threaded.ca, timeout=30) as c:
            done = await asyncio.gather(*(c.request("POST", "/echo", body=p) for p in payloads))
            assert {r.http_version for r in done} == {"HTTP/2"}
            return [r.content for r in done]

    assert asyncio.run(upload_all()) == payloads
