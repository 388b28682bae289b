"""HTTP/2 edge cases against the real server over TLS, driven frame by frame.

Every test ends by checking that a second client is still served.
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from h2books.http import Hints, Request, Response
from h2books.interfaces.native import NativeInterface
from h2books.protocol.h1.body import DISCARD_LIMIT
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.config import Limits, ServerConfig
from h2books.server.connection import WRITE_DURING_READ
from h2books.server.exchange import BIG_BODY, BODY_SLICE, Exchange
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    PING,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    WireClient,
    frame,
    settings,
)
from tests.server.inprocess import (
    GET,
    POST,
    RecordingTransport,
    answer_one_h2_request,
    connect,
    connect_interface,
    h2_client,
    parts,
    pump,
    task_interface,
)


@pytest.fixture
def client(server: ServerProcess):  # type: ignore[no-untyped-def]
    c = WireClient(server.port, server.ca)
    c.handshake()
    yield c
    c.close()


def assert_still_serving(server: ServerProcess) -> None:
    other = WireClient(server.port, server.ca)
    try:
        other.handshake()
        other.get(1, "/book?id=7")
        headers, body = other.response(1)
        assert headers[":status"] == "200"
        assert "title" in json.loads(body)
    finally:
        other.close()


def test_simple_get(client: WireClient, server: ServerProcess) -> None:
    client.get(1, "/hello")
    headers, body = client.response(1)
    assert headers[":status"] == "200"
    assert body == b"hello world (in HTTP2)"
    assert headers["server"] == "h2books"
    assert "date" in headers


def test_many_streams_on_one_connection(client: WireClient) -> None:
    # Two waves of 128 concurrent streams: the advertised SETTINGS_MAX_CONCURRENT_STREAMS.
    for wave in (range(1, 257, 2), range(257, 513, 2)):
        for i in wave:
            client.get(i, f"/book?id={i}")
        for i in wave:
            headers, _ = client.response(i)
            assert headers[":status"] == "200", (i, headers)


def test_streams_beyond_the_limit_are_refused(client: WireClient) -> None:
    # 129 requests in one write: the server sees all before answering any, so the last is refused.
    client.send(
        b"".join(
            frame(HEADERS, END_HEADERS | END_STREAM, i, client.request_block(f"/book?id={i}"))
            for i in range(1, 259, 2)
        )
    )
    frames = client.frames_until(lambda f: f.type == RST_STREAM)
    assert frames[-1].stream_id == 257 and frames[-1].error_code == REFUSED_STREAM
    for i in range(1, 257, 2):
        headers, _ = client.response(i)
        assert headers[":status"] == "200"


def test_small_window_large_response(server: ServerProcess) -> None:
    """The index (~20 KB) through a 100-byte stream window: sent piecewise as windows open."""
    c = WireClient(server.port, server.ca)
    try:
        c.handshake(initial_window_size=100)
        c.get(1, "/")
        headers, body = c.response(1)
        assert headers[":status"] == "200"
        assert len(json.loads(body)) == 3000
    finally:
        c.close()
    assert_still_serving(server)


def test_window_shrunk_by_settings_goes_negative(server: ServerProcess) -> None:
    c = WireClient(server.port, server.ca)
    try:
        c.handshake(initial_window_size=1000)
        c.get(1, "/")
        # Take the first 1000 bytes, then shrink every stream window by 900: it is now -900.
        got = b""
        while len(got) < 1000:
            f = c.read_frame()
            assert f is not None
            if f.type == DATA:
                got += f.payload
        c.send(settings(initial_window_size=100))
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 900)))  # back to 0: nothing may come
        with pytest.raises(TimeoutError):
            while True:
                f = c.read_frame(timeout=0.5)
                assert f is not None
                assert f.type != DATA, "DATA sent while the stream window was not positive"
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1 << 20)))
        c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 20)))
        while True:
            f = c.read_frame()
            assert f is not None
            if f.type == DATA:
                got += f.payload
                if f.flags & END_STREAM:
                    break
        assert len(json.loads(got)) == 3000
    finally:
        c.close()


def test_continuation_frames(client: WireClient) -> None:
    block = client.request_block("/book?id=3", extra=[("x-filler", "a" * 300)])
    parts = [block[:10], block[10:50], block[50:]]
    client.send(
        frame(HEADERS, END_STREAM, 1, parts[0])
        + frame(CONTINUATION, 0, 1, parts[1])
        + frame(CONTINUATION, END_HEADERS, 1, parts[2])
    )
    headers, _ = client.response(1)
    assert headers[":status"] == "200"


def test_rst_stream_then_more_requests(client: WireClient) -> None:
    client.send(frame(HEADERS, END_HEADERS, 1, client.request_block("/book?id=1", "POST")))
    client.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 0x8)))
    client.get(3, "/book?id=2")
    headers, _ = client.response(3)
    assert headers[":status"] == "200"


def test_request_body(client: WireClient) -> None:
    client.send(
        frame(
            HEADERS,
            END_HEADERS,
            1,
            client.request_block("/book?id=1", "POST", [("content-length", "5")]),
        )
    )
    client.send(frame(DATA, END_STREAM, 1, b"hello"))
    headers, _ = client.response(1)
    assert headers[":status"] == "405"
    assert "GET" in headers["allow"]


def test_ping(client: WireClient) -> None:
    client.send(frame(PING, 0, 0, b"12345678"))
    frames = client.frames_until(lambda f: f.type == PING)
    assert frames[-1].flags & ACK and frames[-1].payload == b"12345678"


def test_bad_hpack_is_compression_error(client: WireClient, server: ServerProcess) -> None:
    client.send(
        frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xff\xff\xff\xff\x7f")
    )  # index far out of range
    goaway = client.expect_goaway()
    assert goaway.error_code == COMPRESSION_ERROR
    client.expect_closed()
    assert_still_serving(server)


def test_oversized_frame_is_frame_size_error(client: WireClient, server: ServerProcess) -> None:
    client.send(frame(HEADERS, END_HEADERS, 1, b"\x82" * 16385))
    goaway = client.expect_goaway()
    assert goaway.error_code == FRAME_SIZE_ERROR
    client.expect_closed()
    assert_still_serving(server)


def test_headers_on_stream_zero(client: WireClient, server: ServerProcess) -> None:
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 0, client.request_block()))
    assert client.expect_goaway().error_code == PROTOCOL_ERROR
    client.expect_closed()


def test_uppercase_header_name_is_stream_error(client: WireClient) -> None:
    client.send(
        frame(HEADERS, END_HEADERS | END_STREAM, 1, client.request_block(extra=[("X-Upper", "1")]))
    )
    frames = client.frames_until(lambda f: f.type == RST_STREAM)
    assert frames[-1].stream_id == 1 and frames[-1].error_code == PROTOCOL_ERROR
    client.get(3)
    headers, _ = client.response(3)
    assert headers[":status"] == "200"


def test_connection_window_overflow(client: WireClient, server: ServerProcess) -> None:
    client.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
    assert client.expect_goaway().error_code == FLOW_CONTROL_ERROR
    client.expect_closed()


def test_invalid_preface(server: ServerProcess) -> None:
    c = WireClient(server.port, server.ca)
    try:
        c.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
        frames = c.frames_until(lambda f: False, timeout=5)
        # RFC 9113 §3.4: a connection error; the GOAWAY may be omitted, the close may not.
        assert c.closed
        assert all(f.error_code == PROTOCOL_ERROR for f in frames if f.type == GOAWAY)
    finally:
        c.close()
    assert_still_serving(server)


def test_garbage_over_tls_after_handshake(server: ServerProcess) -> None:
    c = WireClient(server.port, server.ca)
    try:
        c.send(b"\x00\x01garbage that is no preface at all\r\n\r\n")
        c.expect_closed()
    finally:
        c.close()
    assert_still_serving(server)


def test_settings_are_acknowledged(client: WireClient) -> None:
    client.send(settings(max_frame_size=32768, header_table_size=0))
    frames = client.frames_until(lambda f: f.type == SETTINGS and bool(f.flags & ACK))
    assert frames[-1].payload == b""
    client.get(1, "/book?id=9")  # the server must now encode with a zero-size table
    headers, _ = client.response(1)
    assert headers[":status"] == "200"


def test_preface_over_cleartext_h2c(server: ServerProcess) -> None:
    c = WireClient(server.http_port, tls=False)
    try:
        c.handshake()
        c.get(1, "/book?id=11")
        headers, body = c.response(1)
        assert headers[":status"] == "200" and json.loads(body)["title"]
    finally:
        c.close()


# -- in process: large bodies (see tests.server.inprocess) ------------------------------------


def _h2_client_exchange(
    body_size: int, high: int, window: int, transport: RecordingTransport | None = None
) -> tuple[bytes, int, int, list[int]]:
    """A client (the h2 library) GETs a `body_size` body from an in-process server whose
    transport pauses past `high` bytes; returns the body, the largest write, the writes
    made before any drain, and the DATA frame sizes. A given `transport` says by its
    `scheme` attribute, if it has one, whether the connection is over TLS."""
    payload = bytes(range(256)) * (body_size // 256) + b"z" * (body_size % 256)

    async def main() -> tuple[bytes, int, int, list[int]]:
        nonlocal transport
        if transport is None:
            transport = RecordingTransport(high=high)
        scheme = getattr(transport, "scheme", "https")
        protocol = connect(
            H2ServerProtocol, lambda req: Response(200, [], payload), transport, scheme
        )
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        client.increment_flow_control_window(window)
        client.send_headers(
            1,
            [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", "/big")],
            end_stream=True,
        )
        protocol.data_received(client.data_to_send())
        body = bytearray()
        frames: list[int] = []
        ended = False
        seen = 0
        early_writes = len(transport.writes)
        for _ in range(10000):
            await asyncio.sleep(0)
            data = b"".join(transport.writes[seen:])
            seen = len(transport.writes)
            for event in client.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    frames.append(len(event.data))
                    client.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            reply = client.data_to_send()
            if reply:
                protocol.data_received(reply)
            transport.drain()
            if ended:
                break
        assert ended
        return bytes(body), max(len(w) for w in transport.writes), early_writes, frames

    result = asyncio.run(main())
    assert result[0] == payload
    return result


def test_big_body_goes_out_in_slices_as_the_transport_drains() -> None:
    size = 3 * BIG_BODY + 1234
    _, largest_write, early_writes, frames = _h2_client_exchange(size, 256 * 1024, 1 << 30)
    # Framing adds 9 octets per DATA frame (16 KiB each, the peer's default maximum).
    assert largest_write <= BODY_SLICE + BODY_SLICE // 16384 * 9 + 1024
    assert early_writes <= 3  # preface and headers, then a slice: pause_writing stops it
    assert max(frames) <= 16384


class CleartextTransport(RecordingTransport):
    scheme = "http"


def test_over_tls_each_slice_is_one_write_of_whole_tls_records() -> None:
    # uvloop's TLS transport makes a record of every piece it is handed: the frames are
    # joined, and a slice's 7 DATA frames fill 7 records of 16 KiB exactly.
    transport = RecordingTransport(high=1 << 30)
    _h2_client_exchange(3 * BIG_BODY, 1 << 30, 1 << 30, transport)
    assert transport.writelines_calls == 0
    slices = [len(w) for w in transport.writes if len(w) >= BODY_SLICE]
    assert len(slices) >= 3 * BIG_BODY // BODY_SLICE - 1
    assert all(size == 7 * 16384 for size in slices[1:-1])


def test_over_cleartext_frames_and_body_go_out_without_a_join() -> None:
    transport = CleartextTransport(high=1 << 30)
    _h2_client_exchange(3 * BIG_BODY, 1 << 30, 1 << 30, transport)
    assert transport.writelines_calls >= 3 * BIG_BODY // BODY_SLICE


def test_big_body_waits_for_the_peers_window() -> None:
    # A 100 KB stream window: the body only flows as the client acknowledges it.
    _h2_client_exchange(2 * BIG_BODY, 1 << 30, 100_000)


# -- request bodies, flow-control credit and the connection's body budget -------------


def _config(**limits: int) -> ServerConfig:
    return ServerConfig(data_dir=Path("/nonexistent"), access_log=False, limits=Limits(**limits))


def test_a_413_in_the_middle_of_a_body_gives_its_budget_back() -> None:
    async def main() -> tuple[int, list[h2.events.Event]]:
        transport = RecordingTransport()
        interface = NativeInterface(lambda req: Response(200, [], b"ok")).handle
        protocol = connect_interface(
            H2ServerProtocol, interface, transport, _config(max_body_size=100_000)
        )
        client = h2_client()
        await pump(protocol, transport, client)
        client.send_headers(1, POST)
        for _ in range(8):  # 120 000 bytes: past max_body_size
            client.send_data(1, b"x" * 15_000)
            protocol.data_received(client.data_to_send())
        events = await pump(protocol, transport, client)
        return protocol._body_bytes, events

    held, events = asyncio.run(main())
    statuses = [dict(e.headers)[b":status"] for e in events if hasattr(e, "headers")]
    assert statuses == [b"413"]
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == 0 for e in events)
    assert held == 0  # nothing is held for a stream that is gone


def test_an_upload_is_not_held_back_by_an_exchange_without_a_body() -> None:
    """Stream 1 waits in its handler; stream 3 uploads more than the body budget. The
    oldest body (stream 3's, not stream 1's) always gets its credit: no deadlock."""

    async def main() -> bool:
        release = asyncio.Event()

        async def handler(request: Request) -> Response:
            if request.path == "/slow":
                await release.wait()
            return Response(200, [], b"%d" % len(request.body))

        transport = RecordingTransport()
        protocol = connect_interface(
            H2ServerProtocol,
            NativeInterface(handler).handle,
            transport,
            _config(max_buffered_body=200_000, max_body_size=8_000_000),
        )
        client = h2_client()
        client.increment_flow_control_window(10_000_000)
        await pump(protocol, transport, client)
        slow = [(":method", "GET"), (":scheme", "https"), (":authority", "x"), (":path", "/slow")]
        client.send_headers(1, slow, end_stream=True)
        client.send_headers(3, POST)
        protocol.data_received(client.data_to_send())
        sent, total = 0, 1_500_000
        for _ in range(400):
            room = min(client.local_flow_control_window(3), total - sent, 16384)
            if room > 0:
                client.send_data(3, b"y" * room, end_stream=sent + room == total)
                sent += room
            for event in await pump(protocol, transport, client):
                if isinstance(event, h2.events.StreamEnded) and event.stream_id == 3:
                    release.set()
                    return True
        release.set()
        return False

    assert asyncio.run(main())


def test_a_body_read_in_parts_then_taken_whole_keeps_the_budget_exact() -> None:
    seen: list[int] = []

    async def handler(exchange: Exchange) -> None:
        first = await exchange.receive()  # read as it comes ...
        while not exchange.body_complete:
            await asyncio.sleep(0)
        rest = exchange.take_body()  # ... then the rest at once
        seen.append(len(first) + len(rest))
        exchange.respond(Response(200, [], b"ok"))

    async def main() -> int:
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        await pump(protocol, transport, client)
        client.send_headers(1, POST)
        client.send_data(1, b"a" * 15000)
        protocol.data_received(client.data_to_send())
        await pump(protocol, transport, client)
        client.send_data(1, b"b" * 15000, end_stream=True)
        protocol.data_received(client.data_to_send())
        await pump(protocol, transport, client)
        return protocol._body_bytes

    assert asyncio.run(main()) == 0
    assert seen == [30000]


def test_an_answer_before_the_whole_request_resets_the_rest_with_no_error() -> None:
    """RFC 9113 §8.1: a complete response before the request is complete may ask the
    client to stop with RST_STREAM NO_ERROR; the server then reads no more of it."""

    async def handler(exchange: Exchange) -> None:
        exchange.respond(Response(401, [], b"no"))

    async def main() -> tuple[list[h2.events.Event], bool]:
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        await pump(protocol, transport, client)
        client.send_headers(1, POST)
        client.send_data(1, b"x" * 1000)
        protocol.data_received(client.data_to_send())
        events = await pump(protocol, transport, client)
        return events, protocol.is_idle()

    events, idle = asyncio.run(main())
    assert any(isinstance(e, h2.events.StreamReset) and e.error_code == 0 for e in events)
    assert idle


def _early_answer_to_a_declared_body(length: int, sent: int) -> list[h2.events.Event]:
    async def handler(exchange: Exchange) -> None:
        exchange.respond(Response(401, [], b"no"))

    async def main() -> list[h2.events.Event]:
        transport = RecordingTransport()
        protocol = connect_interface(H2ServerProtocol, task_interface(handler), transport)
        client = h2_client()
        await pump(protocol, transport, client)
        client.send_headers(1, [*POST, ("content-length", str(length))])
        client.send_data(1, b"x" * sent)
        protocol.data_received(client.data_to_send())
        events = await pump(protocol, transport, client)
        if not any(isinstance(e, h2.events.StreamReset) for e in events):
            rest = length - sent
            while rest:
                size = min(rest, 16384)
                rest -= size
                client.send_data(1, b"x" * size, end_stream=not rest)
                protocol.data_received(client.data_to_send())
                events += await pump(protocol, transport, client)
            assert protocol.is_idle()
        return events

    return asyncio.run(main())


def test_an_early_answer_lets_a_short_declared_rest_in_and_drops_it() -> None:
    # httpx and curl take RST_STREAM NO_ERROR mid-upload as a failure: a rest of at most
    # DISCARD_LIMIT octets is let in instead, credited as it comes, and dropped.
    events = _early_answer_to_a_declared_body(1000 + DISCARD_LIMIT, 1000)
    assert not any(
        isinstance(e, (h2.events.StreamReset, h2.events.ConnectionTerminated)) for e in events
    )
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)


def test_an_early_answer_stops_a_long_declared_rest_with_no_error() -> None:
    events = _early_answer_to_a_declared_body(1001 + DISCARD_LIMIT, 1000)
    assert [e.error_code for e in events if isinstance(e, h2.events.StreamReset)] == [0]


def test_head_answered_in_parts_sends_no_body() -> None:
    async def handler(exchange: Exchange) -> None:
        exchange.start(Response(200, [], stream=parts()))
        assert await exchange.wait_writable()
        exchange.write(b"body-bytes")
        exchange.end()

    head = [(":method", "HEAD"), (":scheme", "https"), (":authority", "x"), (":path", "/")]
    events = answer_one_h2_request(handler, head)
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b""


def test_graceful_shutdown_closes_at_the_grace_deadline_without_a_ping_ack() -> None:
    async def main() -> tuple[bool, bool]:
        transport = RecordingTransport()
        interface = NativeInterface(lambda req: Response(200, [], b"ok")).handle
        protocol = connect_interface(H2ServerProtocol, interface, transport)
        client = h2_client()
        await pump(protocol, transport, client)  # SETTINGS exchanged, no stream open
        protocol.shutdown()  # GOAWAY + PING; this peer never answers the PING
        await asyncio.sleep(0)
        now = asyncio.get_running_loop().time()
        protocol.check_timeouts(now + 1.9)  # within the grace: still open
        early = transport.closed
        protocol.check_timeouts(now + 2.1)  # past it: the final GOAWAY, then closed
        return early, transport.closed

    early, late = asyncio.run(main())
    assert not early
    assert late


BOOK = b"x" * 1000
PUSHED = [f"/book?id={i}".encode() for i in range(400)]


def _index_pushing_400_books(transport: RecordingTransport) -> h2.connection.H2Connection:
    """A `--push` connection over `transport` whose "/" pushes 400 books of 1,000 octets,
    asked for by an `h2` client with wide windows; the client, after the request is read."""

    def handler(request: Request) -> Response:
        if request.path == "/":
            return Response(200, body=b"index", hints=Hints(push=PUSHED))
        return Response(200, body=BOOK)

    config = ServerConfig(data_dir=Path("/nonexistent"), access_log=False, push=True)
    protocol = connect_interface(
        H2ServerProtocol, NativeInterface(handler).handle, transport, config
    )
    client = h2_client(window=1 << 24)
    client.increment_flow_control_window((1 << 24) - 65535)
    client.send_headers(1, GET, end_stream=True)
    protocol.data_received(client.data_to_send())
    return client


def test_a_push_carries_no_host_field() -> None:
    """A push names its authority in :authority alone: a Host field handed to `push` is
    dropped from the PUSH_PROMISE and from the pushed exchange's headers (which no core
    checked against :authority)."""

    async def main() -> None:
        transport = RecordingTransport()
        pushed: list[Exchange] = []

        def interface(exchange: Exchange) -> None:
            if exchange.target == b"/":
                fields = [(b"accept", b"*/*"), (b"host", b"elsewhere.example")]
                assert exchange.push(b"/pushed", fields)
                exchange.respond(Response(200, body=b"index"))
            else:
                pushed.append(exchange)
                exchange.respond(Response(200, body=b"pushed"))

        config = ServerConfig(data_dir=Path("/nonexistent"), access_log=False, push=True)
        protocol = connect_interface(H2ServerProtocol, interface, transport, config)
        client = h2_client()
        client.send_headers(1, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        events = client.receive_data(transport.data)
        (promise,) = [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        assert b"host" not in dict(promise.headers)
        assert dict(promise.headers)[b"accept"] == b"*/*"
        (exchange,) = pushed
        assert exchange.headers == [(b"accept", b"*/*")]

    asyncio.run(main())


def test_many_pushes_leave_while_the_rest_are_made() -> None:
    """A response that pushes 400 KiB (the index pushes every book) writes its output in
    parts of at least 16 KiB during the read that asked for it, so that TCP starts on the
    first ones; every push and the response itself still arrive whole and in order."""

    async def main() -> None:
        transport = RecordingTransport()
        client = _index_pushing_400_books(transport)
        writes = [len(write) for write in transport.writes]
        assert len(writes) >= 4, writes  # ~430 KB of pushes: several writes in the read
        assert all(size >= WRITE_DURING_READ for size in writes[1:-1]), writes  # [0]: settings
        events = client.receive_data(transport.data)
        promised = [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        bodies: dict[int, bytes] = {}
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        assert [dict(e.headers)[b":path"] for e in promised] == PUSHED
        assert all(bodies[e.pushed_stream_id] == BOOK for e in promised)
        assert bodies[1] == b"index"

    asyncio.run(main())


def test_a_burst_of_pushes_stops_when_the_transport_closes() -> None:
    """The transport closed while the index pushed its books (a cleartext transport does
    so on the write that fails): the pushes stop there."""

    class ClosingTransport(RecordingTransport):
        def write(self, data: bytes) -> None:
            super().write(data)
            if len(data) >= WRITE_DURING_READ:
                self.closed = True  # as a transport whose socket failed reports it

    async def main() -> None:
        transport = ClosingTransport()
        client = _index_pushing_400_books(transport)
        events = client.receive_data(transport.writes[0] + transport.writes[1])
        promised = [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        assert 0 < len(promised) < 100, len(promised)
        assert sum(len(write) for write in transport.writes[2:]) < WRITE_DURING_READ

    asyncio.run(main())


def _hundred_requests_after(other_reader: str | None) -> list[int]:
    """The sizes of what one read of 100 requests (answers of 1,000 octets) wrote, the
    read before it being by this connection, or by another one (`other_reader`: "h2" or
    "h1", its protocol)."""

    def handler(request: Request) -> Response:
        return Response(200, body=BOOK)

    async def main() -> list[int]:
        transport = RecordingTransport()
        config = ServerConfig(data_dir=Path("/nonexistent"), access_log=False)
        protocol = connect_interface(
            H2ServerProtocol, NativeInterface(handler).handle, transport, config
        )
        other: H2ServerProtocol | H1ServerProtocol
        if other_reader == "h1":
            other = H1ServerProtocol(protocol.state, "https")
            first_read = b"GET /book?id=1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
        else:
            other = H2ServerProtocol(protocol.state, "https")
            first_read = h2_client().data_to_send()
        other.connection_made(RecordingTransport())  # type: ignore[arg-type]
        client = h2_client(window=1 << 24)
        client.increment_flow_control_window((1 << 24) - 65535)
        protocol.data_received(client.data_to_send())  # the preface: a read of its own
        if other_reader is not None:
            other.data_received(first_read)
        before = len(transport.writes)
        for stream_id in range(1, 201, 2):
            client.send_headers(stream_id, GET, end_stream=True)
        protocol.data_received(client.data_to_send())
        bodies: dict[int, bytes] = {}
        for event in client.receive_data(transport.data):
            if isinstance(event, h2.events.DataReceived):
                bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        assert bodies == {stream_id: BOOK for stream_id in range(1, 201, 2)}
        return [len(write) for write in transport.writes[before:]]

    return asyncio.run(main())


def test_a_read_of_many_requests_writes_each_full_record_while_the_rest_are_answered() -> None:
    """100 requests in one read on a connection that had the server's previous read too:
    the output leaves in writes of at least a TLS record's worth while the read is
    processed (the peer can read and ask again meanwhile), not in one write at the end;
    every answer arrives whole."""
    writes = _hundred_requests_after(None)
    assert len(writes) >= 5, writes  # ~110 KB of answers
    assert all(size >= WRITE_DURING_READ for size in writes[:-1]), writes


@pytest.mark.parametrize("other_reader", ["h2", "h1"])
def test_with_other_connections_reading_a_read_writes_once(other_reader: str) -> None:
    """The same read right after another connection's (of either protocol): the server is
    kept busy by others, so writing early would buy no overlap, only writes; its answers
    leave in one write."""
    writes = _hundred_requests_after(other_reader)
    assert len(writes) == 1, writes
