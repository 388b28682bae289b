"""The HTTP/3 adapter over real UDP, real QUIC and TLS 1.3: aioquic's own client as the oracle.

Every test runs a `Server` with http3 on in its own event loop, next to the client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aioquic.buffer import Buffer, encode_uint_var
from aioquic.h3.connection import ErrorCode as H3Error
from aioquic.h3.connection import FrameType

from h2books.app import create_app
from h2books.app.bookstore import Bookstore
from h2books.interfaces.asgi import AsgiInterface
from h2books.server.config import ServerConfig
from tests.server.h3_support import H3Answer, OracleProtocol, h3_server, oracle

AUTHORITY = b"localhost"


@pytest.fixture(scope="module")
def bookstore(tmp_path_factory: pytest.TempPathFactory) -> Bookstore:
    return create_app(tmp_path_factory.mktemp("h3-books"))


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo, streams, trailers and a slow answer, saying which HTTP version it saw."""
    assert scope["type"] == "http"
    path = scope["path"]
    version = [(b"x-http-version", scope["http_version"].encode())]
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": version})
        await send({"type": "http.response.body", "body": body})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": version})
        for index in range(5):
            await send(
                {"type": "http.response.body", "body": b"part%d;" % index, "more_body": True}
            )
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/trailers":
        await send(
            {"type": "http.response.start", "status": 200, "headers": version, "trailers": True}
        )
        await send({"type": "http.response.body", "body": b"with trailers"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"42")]})
    elif path == "/slow":
        await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": version})
        await send({"type": "http.response.body", "body": b"finished"})
    elif path == "/hosts":
        hosts = b",".join(value for name, value in scope["headers"] if name == b"host")
        first = scope["headers"][0][0]
        await send({"type": "http.response.start", "status": 200, "headers": version})
        await send({"type": "http.response.body", "body": first + b";" + hosts})
    elif path == "/cookies":
        cookies = b",".join(value for name, value in scope["headers"] if name == b"cookie")
        await send({"type": "http.response.start", "status": 200, "headers": version})
        await send({"type": "http.response.body", "body": cookies})
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200, "headers": version})
        for _ in range(16):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": version})
        await send({"type": "http.response.body", "body": b"no"})


def run_with_client(
    tmp_path: Path,
    app: Any,
    scenario: Callable[[OracleProtocol, Any], Awaitable[None]],
    configure: Callable[[ServerConfig], None] | None = None,
) -> None:
    async def main() -> None:
        async with (
            h3_server(tmp_path, app, configure) as (server, port, ca),
            oracle(port, ca) as client,
        ):
            await scenario(client, server)

    asyncio.run(asyncio.wait_for(main(), 60))


def asgi(config: ServerConfig | None = None) -> AsgiInterface:
    return AsgiInterface(asgi_app, config, lifespan="off")


def test_bookstore_index_book_and_404(tmp_path: Path, bookstore: Bookstore) -> None:
    async def scenario(client: OracleProtocol, server: Any) -> None:
        index = await client.request(b"GET", b"/", AUTHORITY)
        assert index.status == 200
        assert len(json.loads(index.body)) == 3000
        assert (
            index.header(b"alt-svc") == b'h3=":%d"; ma=86400' % server.sockets[0].getsockname()[1]
        )
        book = await client.request(b"GET", b"/book?id=7", AUTHORITY)
        assert book.status == 200 and "title" in json.loads(book.body)
        missing = await client.request(b"GET", b"/book?id=999999", AUTHORITY)
        assert missing.status == 404

    run_with_client(tmp_path, bookstore, scenario)


def test_the_scope_has_one_host_field_first(tmp_path: Path) -> None:
    """:authority alone becomes a leading host field; a Host field that came too (after
    other fields) is moved first, and no second one is added."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        alone = await client.request(b"GET", b"/hosts", AUTHORITY)
        assert alone.body == b"host;localhost"
        extra = [(b"accept", b"*/*"), (b"host", b"localhost")]
        both = await client.request(b"GET", b"/hosts", AUTHORITY, headers=extra)
        assert both.body == b"host;localhost"

    run_with_client(tmp_path, asgi(), scenario)


def test_the_request_rules_are_http2s(tmp_path: Path) -> None:
    """RFC 9114 §4.2-4.3 (the rules of RFC 9113 §8.2-8.3, checked by the same code): a Host
    field that differs from :authority, or a second one, makes the request malformed: its
    stream is reset H3_MESSAGE_ERROR and the connection goes on; cookie crumbs reach the
    app as one field (§4.2.1)."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        elsewhere = [(b"host", b"elsewhere.example")]
        differs = await client.request(b"GET", b"/hosts", AUTHORITY, headers=elsewhere)
        assert (differs.status, differs.reset_code) == (0, H3Error.H3_MESSAGE_ERROR)
        twice = [(b"host", AUTHORITY), (b"accept", b"*/*"), (b"host", AUTHORITY)]
        second = await client.request(b"GET", b"/hosts", AUTHORITY, headers=twice)
        assert (second.status, second.reset_code) == (0, H3Error.H3_MESSAGE_ERROR)
        crumbs = [(b"cookie", b"a=1"), (b"accept", b"*/*"), (b"cookie", b"b=2")]
        joined = await client.request(b"GET", b"/cookies", AUTHORITY, headers=crumbs)
        assert (joined.status, joined.body) == (200, b"a=1; b=2")
        same = await client.request(b"GET", b"/hosts", AUTHORITY, headers=[(b"host", AUTHORITY)])
        assert (same.status, same.body) == (200, b"host;localhost")

    run_with_client(tmp_path, asgi(), scenario)


def test_malformed_pseudo_fields_are_message_errors(tmp_path: Path) -> None:
    """What aioquic lets through (it requires only :method and :authority) is checked as
    HTTP/2 checks it: a request without :scheme or :path, a :path that does not start with
    "/", :protocol on a GET: each reset H3_MESSAGE_ERROR, the connection goes on; OPTIONS *
    is a request; a well-formed extended CONNECT (RFC 9220) is still refused."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        authority = (b":authority", AUTHORITY)
        get, https = (b":method", b"GET"), (b":scheme", b"https")
        malformed = [
            [get, authority],
            [get, https, authority, (b":path", b"hosts")],
            [get, https, authority, (b":path", b"/hosts"), (b":protocol", b"websocket")],
        ]
        for fields in malformed:
            answer = await raw_request(client, fields)
            assert (answer.status, answer.reset_code) == (0, H3Error.H3_MESSAGE_ERROR)
        websocket = [(b":method", b"CONNECT"), https, authority, (b":path", b"/"),
                     (b":protocol", b"websocket")]  # fmt: skip
        refused = await raw_request(client, websocket)
        assert refused.reset_code == H3Error.H3_REQUEST_REJECTED
        options = [(b":method", b"OPTIONS"), https, authority, (b":path", b"*")]
        assert (await raw_request(client, options)).status == 404  # the app's answer

    run_with_client(tmp_path, asgi(), scenario)


def test_refused_requests_leave_nothing_behind(tmp_path: Path) -> None:
    """A request refused on its head (malformed, CONNECT) that ended with it, as a GET
    does: no further byte comes to end the dropping of its input, so nothing may wait for
    one; one that did not end is forgotten once the peer resets it after our STOP_SENDING.
    aioquic's record of either stream goes too (our reset ends its sending half)."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        elsewhere = [(b"host", b"elsewhere.example")]
        refused = []
        for _ in range(3):
            refused.append(client.open(b"GET", b"/hosts", AUTHORITY, headers=elsewhere))
        connect = [(b":method", b"CONNECT"), (b":authority", AUTHORITY)]
        refused.append(client.open(b"POST", b"/echo", AUTHORITY, headers=elsewhere, end=False))
        refused.append(raw_open(client, connect))
        for _, future in refused:
            assert (await asyncio.wait_for(future, 10)).reset_code is not None
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
        (connection,) = server.state.connections
        assert not connection._dropping
        assert not {stream_id for stream_id, _ in refused} & set(connection.h3._stream)
        assert connection.is_idle()

    run_with_client(tmp_path, asgi(), scenario)


def raw_open(
    client: OracleProtocol, fields: list[tuple[bytes, bytes]]
) -> tuple[int, asyncio.Future[H3Answer]]:
    """A request of exactly these fields, ended with them (`OracleProtocol.open` adds
    the pseudo-fields)."""
    stream_id = client._quic.get_next_available_stream_id()
    client.h3.send_headers(stream_id, fields, end_stream=True)
    future: asyncio.Future[H3Answer] = asyncio.get_running_loop().create_future()
    client.answers[stream_id] = (H3Answer(), future)
    client.transmit()
    return stream_id, future


async def raw_request(client: OracleProtocol, fields: list[tuple[bytes, bytes]]) -> H3Answer:
    return await asyncio.wait_for(raw_open(client, fields)[1], 10)


def test_many_concurrent_streams(tmp_path: Path, bookstore: Bookstore) -> None:
    async def scenario(client: OracleProtocol, server: Any) -> None:
        # More than the 128 streams the server allows at once: the rest wait for credit.
        futures = [client.open(b"GET", b"/book?id=%d" % n, AUTHORITY)[1] for n in range(1, 401)]
        answers = await asyncio.wait_for(asyncio.gather(*futures), 30)
        assert all(a.status == 200 and "title" in json.loads(a.body) for a in answers)
        assert len({a.body for a in answers}) == 400

    run_with_client(tmp_path, bookstore, scenario)


def test_asgi_scope_post_bodies_streams_and_trailers(tmp_path: Path) -> None:
    async def scenario(client: OracleProtocol, server: Any) -> None:
        small = await client.request(b"POST", b"/echo", AUTHORITY, body=b"hello over quic")
        assert small.status == 200 and small.body == b"hello over quic"
        assert small.header(b"x-http-version") == b"3"
        # A body in parts, the last one sent later: the app reads it as it comes.
        stream_id, future = client.open(
            b"POST", b"/echo", AUTHORITY, body=b"a" * 100_000, end=False
        )
        await asyncio.sleep(0.05)
        client.send_more(stream_id, b"b" * 100_000, end=True)
        big = await asyncio.wait_for(future, 10)
        assert big.body == b"a" * 100_000 + b"b" * 100_000
        streamed = await client.request(b"GET", b"/stream", AUTHORITY)
        assert streamed.body == b"part0;part1;part2;part3;part4;"
        trailed = await client.request(b"GET", b"/trailers", AUTHORITY)
        assert trailed.body == b"with trailers"
        assert trailed.trailers == [(b"x-checksum", b"42")]
        large = await client.request(b"GET", b"/big", AUTHORITY)
        assert len(large.body) == 16 * 65536
        assert (await client.request(b"GET", b"/nowhere", AUTHORITY)).status == 404

    run_with_client(tmp_path, asgi(), scenario)


def test_body_over_the_limit_is_413_and_the_server_goes_on(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.limits.max_body_size = 10_000

    async def scenario(client: OracleProtocol, server: Any) -> None:
        refused = await client.request(b"POST", b"/echo", AUTHORITY, body=b"z" * 50_000)
        assert refused.status == 413
        fine = await client.request(b"POST", b"/echo", AUTHORITY, body=b"z" * 5_000)
        assert fine.status == 200 and len(fine.body) == 5_000

    run_with_client(tmp_path, asgi(), scenario, configure)


def test_a_request_the_peer_resets_is_dropped_and_others_go_on(tmp_path: Path) -> None:
    async def scenario(client: OracleProtocol, server: Any) -> None:
        stream_id, _ = client.open(b"POST", b"/slow", AUTHORITY, body=b"part", end=False)
        await asyncio.sleep(0.05)
        client._quic.reset_stream(stream_id, H3Error.H3_REQUEST_CANCELLED)
        client.transmit()
        await asyncio.sleep(0.05)
        state = server.state
        (connection,) = [c for c in state.connections]
        assert stream_id not in connection._exchanges  # forgotten, its app cancelled
        answer = await client.request(b"GET", b"/stream", AUTHORITY)
        assert answer.status == 200

    run_with_client(tmp_path, asgi(), scenario)


def test_oversized_request_head_is_refused(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.limits.max_header_list_size = 4096

    async def scenario(client: OracleProtocol, server: Any) -> None:
        answer = await client.request(
            b"GET", b"/stream", AUTHORITY, headers=[(b"x-big", b"v" * 20_000)]
        )
        assert answer.reset_code == H3Error.H3_EXCESSIVE_LOAD
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200

    run_with_client(tmp_path, asgi(), scenario, configure)


def test_graceful_shutdown_sends_goaway_and_finishes_in_flight(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            h3_server(tmp_path, asgi()) as (server, port, ca),
            oracle(port, ca) as client,
        ):
            _, slow = client.open(b"GET", b"/slow", AUTHORITY)
            await asyncio.sleep(0.05)
            shutdown = asyncio.ensure_future(server.shutdown())
            answer = await asyncio.wait_for(slow, 10)
            assert answer.status == 200 and answer.body == b"finished"
            closed = await asyncio.wait_for(client.terminated, 10)
            assert closed.error_code == H3Error.H3_NO_ERROR
            await asyncio.wait_for(shutdown, 10)
            assert not server.state.connections
            # aioquic's client takes GOAWAY silently; its bytes were on our control
            # stream before the close: the server tells it in its state.
            assert server.quic.closed

    asyncio.run(asyncio.wait_for(main(), 60))


def test_shutdown_does_not_wait_on_an_idle_client_that_is_gone(tmp_path: Path) -> None:
    # A client whose last packets never arrived (its CONNECTION_CLOSE lost, or its network
    # gone) never acknowledges our GOAWAY: with no request of its own in flight, the
    # shutdown closes it at once, as an idle HTTP/2 connection is, not after the grace.
    def configure(config: ServerConfig) -> None:
        config.timeouts.graceful_shutdown = 120.0

    async def main() -> None:
        async with (
            h3_server(tmp_path, asgi(), configure) as (server, port, ca),
            oracle(port, ca) as client,
        ):
            assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
            client._transport.sendto = lambda *args: None  # type: ignore[union-attr]
            await asyncio.wait_for(server.shutdown(), 10)
            assert not server.state.connections and not server.quic.connections

    asyncio.run(asyncio.wait_for(main(), 60))


def test_idle_connection_times_out(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.timeouts.keep_alive = 0.5

    async def scenario(client: OracleProtocol, server: Any) -> None:
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
        assert len(server.state.connections) == 1
        await asyncio.wait_for(client.terminated, 10)
        for _ in range(100):
            if not server.state.connections:
                break
            await asyncio.sleep(0.05)
        assert not server.state.connections and not server.quic.connections

    run_with_client(tmp_path, asgi(), scenario, configure)


def frame_header(frame_type: int, length: int) -> bytes:
    return encode_uint_var(frame_type) + encode_uint_var(length)


def test_oversized_trailers_reset_the_request_and_the_buffer_stays_bounded(
    tmp_path: Path,
) -> None:
    """A HEADERS frame (trailers) announcing 1 GiB after a request head: aioquic would
    buffer it whole as it arrives (flow control grows with it); the server drops it."""

    def configure(config: ServerConfig) -> None:
        config.limits.max_header_list_size = 4096

    async def scenario(client: OracleProtocol, server: Any) -> None:
        stream_id, future = client.open(b"POST", b"/echo", AUTHORITY, body=b"start", end=False)
        client._quic.send_stream_data(stream_id, frame_header(FrameType.HEADERS, 1 << 30))
        for _ in range(32):
            client._quic.send_stream_data(stream_id, b"t" * 16_384)
        client.transmit()
        answer = await asyncio.wait_for(future, 10)
        assert answer.reset_code == H3Error.H3_EXCESSIVE_LOAD
        # The same connection goes on, and once our bytes are in, nothing of them is held.
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
        (connection,) = server.state.connections
        assert stream_id not in connection._exchanges
        held = connection.h3._stream.get(stream_id)
        assert held is None or len(held.buffer) <= 4096 + 16
        assert connection.is_idle()
        assert not connection._dropping  # aioquic's client reset it after STOP_SENDING

    run_with_client(tmp_path, asgi(), scenario, configure)


def test_oversized_frame_on_the_control_stream_closes_the_connection(tmp_path: Path) -> None:
    """MAX_PUSH_ID (which a server waits for whole) announcing 1 GiB on the client's
    control stream: that connection ends with H3_EXCESSIVE_LOAD, others go on."""

    def configure(config: ServerConfig) -> None:
        config.limits.max_header_list_size = 4096

    async def main() -> None:
        async with h3_server(tmp_path, asgi(), configure) as (_server, port, ca):
            async with oracle(port, ca) as client:
                assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
                control = client.h3._local_control_stream_id
                assert control is not None
                client._quic.send_stream_data(control, frame_header(FrameType.MAX_PUSH_ID, 1 << 30))
                for _ in range(8):
                    client._quic.send_stream_data(control, b"p" * 16_384)
                client.transmit()
                closed = await asyncio.wait_for(client.terminated, 10)
                assert closed.error_code == H3Error.H3_EXCESSIVE_LOAD
            async with oracle(port, ca) as other:
                assert (await other.request(b"GET", b"/stream", AUTHORITY)).status == 200

    asyncio.run(asyncio.wait_for(main(), 60))


def test_body_sent_after_an_early_answer_leaves_the_connection_idle(tmp_path: Path) -> None:
    """The server answers without reading the body and stops reading; a peer that ignores
    STOP_SENDING and keeps sending body bytes must not keep the connection busy (it
    could never be evicted at the connection cap)."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        ignore_stop_sending(client)
        stream_id, future = client.open(b"POST", b"/nowhere", AUTHORITY, body=b"x", end=False)
        answer = await asyncio.wait_for(future, 10)
        assert answer.status == 404
        for _ in range(4):
            client.send_more(stream_id, b"y" * 1000, end=False)
        # A round trip after the extra body: it has been read by then.
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
        (connection,) = server.state.connections
        assert connection.is_idle()

    run_with_client(tmp_path, asgi(), scenario)


def ignore_stop_sending(client: OracleProtocol) -> None:
    """Make aioquic's client a peer that reads STOP_SENDING and goes on sending (aioquic
    resets the stream at once; RFC 9000 §3.5 says SHOULD, and an attacker need not)."""

    def ignore(context: object, frame_type: int, buf: Buffer) -> None:
        buf.pull_uint_var()  # stream id
        buf.pull_uint_var()  # error code

    handlers = client._quic._QuicConnection__frame_handlers  # type: ignore[attr-defined]
    handlers[0x05] = (ignore, handlers[0x05][1])


def test_a_request_head_too_slow_is_rejected_and_the_connection_goes_on(tmp_path: Path) -> None:
    """The slow-head rule of the other adapters, per stream: a head still incomplete
    `timeouts.request_head` after its first byte is reset H3_REQUEST_REJECTED (the
    server's sweep is called with a later time: a fake clock)."""

    async def scenario(client: OracleProtocol, server: Any) -> None:
        stream_id = client._quic.get_next_available_stream_id()
        future: asyncio.Future[H3Answer] = asyncio.get_running_loop().create_future()
        client.answers[stream_id] = (H3Answer(), future)
        # A HEADERS frame of 100 bytes of which 10 ever come.
        client._quic.send_stream_data(stream_id, frame_header(FrameType.HEADERS, 100) + bytes(10))
        client.transmit()
        (connection,) = server.state.connections
        for _ in range(100):
            if stream_id in connection._heads_arriving:
                break
            await asyncio.sleep(0.01)
        since = connection._heads_arriving[stream_id]
        assert not connection.is_idle()
        connection.check_timeouts(since + 9.9)
        assert stream_id in connection._heads_arriving and not future.done()
        connection.check_timeouts(since + 10.0)
        answer = await asyncio.wait_for(future, 10)
        assert answer.reset_code == H3Error.H3_REQUEST_REJECTED
        assert (await client.request(b"GET", b"/stream", AUTHORITY)).status == 200
        assert connection.is_idle()

    run_with_client(tmp_path, asgi(), scenario)
