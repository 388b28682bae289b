"""The HTTP/2 client connection against `h2`-library servers: limits, resets, GOAWAY, windows."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Coroutine
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from h2books.client import (
    Client,
    GoAwayError,
    ProtocolError,
    RemoteClosedError,
    RequestTimeout,
    Response,
    StreamResetError,
    WireStats,
)
from h2books.client.base import ConnectionSettings
from h2books.client.connection_h2 import H2ClientProtocol, error_name
from h2books.client.exchange import MAX_ATTEMPTS, Exchange
from h2books.client.origin import Origin
from tests.client.fakes import (
    FakeServer,
    H2LoopServer,
    H2Session,
    book_body,
    book_id_of,
    default_answer,
    h2_bookstore,
    serving,
)

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def fetch_all(url: str, targets: list[str], **options: Any) -> list[Response]:
    async def main() -> list[Response]:
        async with Client(url, **options) as client:
            return await asyncio.gather(*(client.get(target) for target in targets))

    return run(main())


def test_error_names() -> None:
    assert error_name(0xB) == "ENHANCE_YOUR_CALM (0xb)"
    assert error_name(0x99) == "unknown error code 0x99"


def test_max_concurrent_streams_is_respected_and_the_rest_is_queued() -> None:
    # The server answers only once three streams are open (counted after each whole read):
    # the client must never have a fourth open, yet every request must complete.
    peak = {"open": 0}

    def handler(sock: socket.socket, server: FakeServer) -> None:
        session = H2Session(sock, server)
        session.conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 3})
        session.flush()
        waiting: list[tuple[int, bytes]] = []
        while data := sock.recv(65536):
            for event in session.conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    path = dict(event.headers)[b":path"]
                    if path == b"/warm-up":
                        session.answer(event.stream_id, 200, b"{}")
                    else:
                        waiting.append((event.stream_id, path))
            peak["open"] = max(peak["open"], len(waiting))
            if len(waiting) >= 3:
                for stream_id, target in waiting:
                    session.answer(stream_id, 200, book_body(book_id_of(target) or ""))
                waiting.clear()
            session.flush()

    async def main() -> list[Response]:
        async with Client(fake.url) as client:
            # One round trip first, so the client has seen the server's SETTINGS.
            await client.get("/warm-up")
            return await asyncio.gather(*(client.get(f"/book?id={i}") for i in range(30)))

    with serving(handler) as fake:
        responses = run(main())
    assert [r.json()["id"] for r in responses] == [str(i) for i in range(30)]
    assert peak["open"] == 3


def test_refused_streams_are_retried() -> None:
    refused: list[bytes] = []

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if path not in refused:
            refused.append(path)
            session.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return True
        return False

    with serving(h2_bookstore(behaviour)) as fake:
        responses = fetch_all(fake.url, ["/book?id=1", "/book?id=2"])
    assert [r.status for r in responses] == [200, 200]
    assert sorted(refused) == [b"/book?id=1", b"/book?id=2"]


def test_a_stream_refused_again_and_again_fails_in_the_end() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        return True

    with serving(h2_bookstore(behaviour)) as fake, pytest.raises(StreamResetError) as caught:
        fetch_all(fake.url, ["/book?id=1"])
    assert caught.value.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
    assert "REFUSED_STREAM" in str(caught.value)


def test_a_reset_stream_fails_only_its_request() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if book_id_of(path) == "2":
            session.conn.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            return True
        return False

    async def main() -> list[Any]:
        async with Client(fake.url) as client:
            return await asyncio.gather(
                *(client.get(f"/book?id={i}") for i in (1, 2, 3)), return_exceptions=True
            )

    with serving(h2_bookstore(behaviour)) as fake:
        first, second, third = run(main())
    assert first.status == third.status == 200
    assert isinstance(second, StreamResetError)
    assert second.error_code == 2
    assert "reset the stream of GET /book?id=2 with INTERNAL_ERROR" in str(second)


def test_graceful_goaway_moves_new_requests_to_a_new_connection() -> None:
    # Each connection answers one request and then says GOAWAY (NO_ERROR) covering it.
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.answer(stream_id, 200, book_body(book_id_of(path) or ""))
        session.conn.close_connection(
            error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=stream_id
        )
        session.flush()
        return True

    stats = WireStats()

    async def main() -> list[str]:
        async with Client(fake.url, stats=stats) as client:
            return [(await client.get(f"/book?id={i}")).json()["id"] for i in range(1, 4)]

    with serving(h2_bookstore(behaviour)) as fake:
        assert run(main()) == ["1", "2", "3"]
    assert stats.connections == 3


def test_streams_above_a_goaways_last_stream_id_are_retried_on_a_new_connection() -> None:
    """RFC 9113 §8.7: what a GOAWAY's last stream id leaves out was not processed, so it is
    safe to send again: the first connection answers one of three requests and goes away;
    the other two are answered on the next."""
    requested: list[tuple[int, bytes]] = []

    def handler(sock: socket.socket, server: FakeServer) -> None:
        session = H2Session(sock, server)
        connection = server.connections
        seen: list[int] = []
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                requested.append((connection, path))
                if connection > 1:
                    session.answer(event.stream_id, *default_answer(path))
                    continue
                seen.append(event.stream_id)
                if len(seen) == 3:
                    first = seen[0]
                    session.answer(first, 200, b"{}")
                    session.conn.close_connection(last_stream_id=first)
            session.flush()

    stats = WireStats()

    async def main() -> list[Response]:
        async with Client(fake.url, stats=stats) as client:
            return await asyncio.gather(*(client.get(f"/book?id={i}") for i in (1, 2, 3)))

    with serving(handler) as fake:
        responses = run(main())
    assert [response.status for response in responses] == [200, 200, 200]
    assert stats.connections == 2
    first_connection = sorted(path for connection, path in requested if connection == 1)
    second_connection = [path for connection, path in requested if connection == 2]
    assert first_connection == [b"/book?id=1", b"/book?id=2", b"/book?id=3"]
    # The two the GOAWAY left out, once more each, in the order they were sent first.
    cut_off = [path for connection, path in requested if connection == 1][1:]
    assert second_connection == cut_off


def test_streams_a_goaway_cuts_off_go_again_ahead_of_the_requests_queued_after_them() -> None:
    """Two streams allowed: /book?id=1 and 2 are sent, 3 waits in the client's queue. The
    GOAWAY answers 1 and cuts 2 off; on the next connection 2 goes before 3."""
    second: list[bytes] = []

    def handler(sock: socket.socket, server: FakeServer) -> None:
        connection = server.connections
        session = H2Session(sock, server, max_concurrent_streams=2)
        seen: list[int] = []
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if connection > 1 or path == b"/warm-up":
                    second.extend([path] if connection > 1 else [])
                    session.answer(event.stream_id, *default_answer(path))
                    continue
                seen.append(event.stream_id)
                if len(seen) == 2:
                    session.answer(seen[0], 200, b"{}")
                    session.conn.close_connection(last_stream_id=seen[0])
            session.flush()

    async def main() -> list[Response]:
        async with Client(fake.url) as client:
            await client.get("/warm-up")  # the client has seen the stream limit
            return await asyncio.gather(*(client.get(f"/book?id={i}") for i in (1, 2, 3)))

    with serving(handler) as fake:
        responses = run(main())
    assert [response.status for response in responses] == [200, 200, 200]
    assert second == [b"/book?id=2", b"/book?id=3"]


def test_what_arrived_on_a_stream_cut_off_by_a_goaway_is_dropped() -> None:
    """A server that sends a 103 on a stream above its GOAWAY's last stream id: the
    answer from the next connection carries none of it."""

    def handler(sock: socket.socket, server: FakeServer) -> None:
        connection = server.connections
        session = H2Session(sock, server)
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if connection > 1 or path == b"/warm-up":
                    session.answer(event.stream_id, *default_answer(path))
                else:
                    session.conn.send_headers(event.stream_id, [(b":status", b"103")])
                    session.conn.close_connection(last_stream_id=1)
            session.flush()

    async def main() -> Response:
        async with Client(fake.url) as client:
            await client.get("/warm-up")
            return await client.get("/book?id=1")

    with serving(handler) as fake:
        response = run(main())
    assert response.status == 200 and response.informational == []


def test_a_request_every_connection_goes_away_before_fails_after_three_tries() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.conn.close_connection(last_stream_id=0)  # processed nothing
        return True  # reading on (not closing first: a reset could beat the GOAWAY)

    stats = WireStats()
    with serving(h2_bookstore(behaviour)) as fake, pytest.raises(GoAwayError) as caught:
        fetch_all(fake.url, ["/book?id=1"], stats=stats)
    assert caught.value.error_code == 0 and caught.value.last_stream_id == 0
    assert "sent GOAWAY (NO_ERROR (0x0), last stream 0) before processing" in str(caught.value)
    assert stats.connections == MAX_ATTEMPTS


def test_responses_larger_than_the_limit_are_refused() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.answer(stream_id, 200, b"x" * 5000)
        return True

    async def main() -> None:
        async with Client(fake.url, max_response_size=1000) as client:
            await client.get("/big")

    with (
        serving(h2_bookstore(behaviour)) as fake,
        pytest.raises(ProtocolError, match="larger than 1000 bytes"),
    ):
        run(main())


def test_large_bodies_flow_through_the_windows() -> None:
    # 3 MiB per response: well beyond the 64 KiB default window the server starts from and
    # the client's own stream window, so WINDOW_UPDATEs must flow both ways.
    body = bytes(range(256)) * (3 * 4096)

    def handler(sock: socket.socket, server: FakeServer) -> None:
        session = H2Session(sock, server)
        pending: dict[int, memoryview] = {}

        def pump() -> None:
            for stream_id, rest in list(pending.items()):
                window = session.conn.local_flow_control_window(stream_id)
                size = min(window, len(rest), session.conn.max_outbound_frame_size)
                while size > 0:
                    session.conn.send_data(
                        stream_id, bytes(rest[:size]), end_stream=size == len(rest)
                    )
                    rest = rest[size:]
                    window = session.conn.local_flow_control_window(stream_id)
                    size = min(window, len(rest), session.conn.max_outbound_frame_size)
                if rest:
                    pending[stream_id] = rest
                else:
                    del pending[stream_id]
            session.flush()

        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                session.conn.send_headers(
                    event.stream_id, [(b":status", b"200"), (b"content-length", b"%d" % len(body))]
                )
                pending[event.stream_id] = memoryview(body)
            pump()

    with serving(handler) as fake:
        responses = fetch_all(fake.url, ["/a", "/b"])
    assert [r.content == body for r in responses] == [True, True]


def test_informational_responses_and_trailers() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.conn.send_headers(stream_id, [(b":status", b"103"), (b"link", b"</a>")])
        session.conn.send_headers(stream_id, [(b":status", b"200")])
        session.conn.send_data(stream_id, b"[1, 2]")
        session.conn.send_headers(stream_id, [(b"checksum", b"abc")], end_stream=True)
        return True

    with serving(h2_bookstore(behaviour)) as fake:
        (response,) = fetch_all(fake.url, ["/"])
    assert response.status == 200
    assert response.json() == [1, 2]


def test_a_head_response_without_a_body() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.conn.send_headers(
            stream_id, [(b":status", b"200"), (b"content-length", b"1234")], end_stream=True
        )
        return True

    async def main() -> Response:
        async with Client(fake.url) as client:
            return await client.request("HEAD", "/")

    with serving(h2_bookstore(behaviour)) as fake:
        response = run(main())
    assert response.status == 200 and response.content == b""
    assert response.header("content-length") == "1234"


def test_a_connection_closed_mid_stream_says_how_far_it_got() -> None:
    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        session.conn.send_headers(stream_id, [(b":status", b"200"), (b"content-length", b"10")])
        session.conn.send_data(stream_id, b"12345")
        session.flush()
        session.sock.shutdown(socket.SHUT_RDWR)
        return True

    with (
        serving(h2_bookstore(behaviour)) as fake,
        pytest.raises(RemoteClosedError, match="5 bytes of its body had arrived"),
    ):
        fetch_all(fake.url, ["/"])


def test_request_timeout_resets_the_stream_and_frees_the_slot() -> None:
    resets: list[int] = []

    def handler(sock: socket.socket, server: FakeServer) -> None:
        session = H2Session(sock, server)
        for event in session.events():
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if path != b"/slow":
                    session.answer(event.stream_id, 200, b"{}")
            elif isinstance(event, h2.events.StreamReset):
                resets.append(event.error_code)
            session.flush()

    async def main() -> tuple[BaseException | Response, Response]:
        async with Client(fake.url, timeout=0.2) as client:
            slow, fast = await asyncio.gather(
                client.get("/slow"), client.get("/fast"), return_exceptions=True
            )
            after = await client.get("/after")
            assert isinstance(fast, Response)
            return slow, after

    with serving(handler) as fake:
        slow, after = run(main())
    assert isinstance(slow, RequestTimeout)
    assert isinstance(slow, TimeoutError)
    assert "no response from" in str(slow) and "GET /slow within 0.2 s" in str(slow)
    assert after.status == 200
    assert resets == [h2.errors.ErrorCodes.CANCEL]


def test_several_connections_share_the_load() -> None:
    stats = WireStats()
    with serving(h2_bookstore()) as fake:
        responses = fetch_all(
            fake.url, [f"/book?id={i}" for i in range(1, 31)], connections=3, stats=stats
        )
        connections = fake.connections
    assert len(responses) == 30
    assert stats.connections == connections == 3


def test_exhausted_stream_ids_move_requests_to_a_new_connection() -> None:
    stats = WireStats()

    async def main() -> list[int]:
        async with Client(fake.url, stats=stats) as client:
            first = await client.get("/book?id=1")
            # Jump the core to the end of the stream id space (2^31-1 is the last id).
            conn = client._lanes[0].conn
            assert isinstance(conn, H2ClientProtocol)
            conn._conn._next_local = 2**31 + 1
            rest = await asyncio.gather(*(client.get(f"/book?id={i}") for i in (2, 3)))
            return [r.status for r in (first, *rest)]

    with serving(h2_bookstore()) as fake:
        assert run(main()) == [200, 200, 200]
    assert stats.connections == 2


class _RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _Owner:
    def requeue(self, exchanges: object, error: object) -> None:
        pass

    def retire(self, connection: object) -> None:
        pass


def test_new_streams_leave_in_quarters_of_the_stream_limit() -> None:
    # Requests made by one loop iteration (the callbacks of one read's responses) go out
    # as each quarter of the stream limit is reached, so the server starts on them early.
    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        settings = ConnectionSettings(Origin("http://localhost:1"), (), None, 1 << 20)
        protocol = H2ClientProtocol(_Owner(), settings)
        transport = _RecordingTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        after_preface = len(transport.writes)
        counts = []
        for i in range(100):
            future: asyncio.Future[Response] = loop.create_future()
            protocol.submit(Exchange(b"GET", b"/%d" % i, (), b"", future, 0.0))
            counts.append(len(transport.writes) - after_preface)
        await asyncio.sleep(0)
        return counts, len(transport.writes) - after_preface

    counts, total = run(main())
    assert counts[23] == 0 and counts[24] == 1  # the 25th of 100 streams flushed
    assert counts[-1] == 4
    assert total == 4  # nothing left for the end-of-iteration flush


def test_the_last_data_of_a_response_is_credited_while_our_body_still_uploads() -> None:
    # The server answers before it has read our whole request body: the stream stays open
    # on our side, so the core cannot credit the connection window at the stream's end.
    # The last DATA must be acknowledged like the others, or every such answer leaks
    # connection window until the upload ends (and a busy connection runs dry).
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        settings = ConnectionSettings(Origin("http://localhost:1"), (), None, 1 << 20)
        protocol = H2ClientProtocol(_Owner(), settings)
        transport = _RecordingTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        server.initiate_connection()
        future: asyncio.Future[Response] = loop.create_future()
        # More than the server's 65,535-octet windows: the rest waits for credit.
        upload = b"u" * 100_000
        protocol.submit(Exchange(b"POST", b"/upload", (), upload, future, 0.0))
        await asyncio.sleep(0)  # the end-of-iteration flush
        for data in transport.writes:
            server.receive_data(data)
        answer = b"a" * 16_000  # one DATA frame, with END_STREAM
        server.send_headers(1, [(b":status", b"200"), (b"content-length", b"16000")])
        server.send_data(1, answer, end_stream=True)
        protocol.data_received(server.data_to_send())
        response = await future
        window = protocol._conn._recv  # the connection window we grant the server
        return response.status, len(response.content), window.outstanding

    status, size, outstanding = run(main())
    assert (status, size) == (200, 16_000)
    assert outstanding == 0  # received and handed out: none of it still held back


class _BurstServer(H2LoopServer):
    """Answers `count` requests once all have arrived, in one write of ~8 KiB a response
    (more than one read, each many slices long, for the client); with `close_after`,
    closes right after it."""

    def __init__(self, count: int, close_after: bool = False) -> None:
        super().__init__()
        self.count = count
        self.close_after = close_after
        self.streams: list[int] = []

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                self.streams.append(event.stream_id)
        answered = len(self.streams) == self.count
        if answered:
            for stream_id in self.streams:
                body = b"%d" % stream_id * 4000
                self.conn.send_headers(stream_id, [(b":status", b"200")])
                self.conn.send_data(stream_id, body, end_stream=True)
            self.streams = []
        self.transport.write(self.conn.data_to_send())
        if answered and self.close_after:
            self.transport.close()


async def _burst(server: _BurstServer, count: int) -> list[str]:
    """What happened, in order: each response's stream (its body's digits) and the mark a
    loop callback scheduled by the first response's callback leaves."""
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    order: list[str] = []
    done = loop.create_future()

    def answered(response: Response | None, error: BaseException | None) -> None:
        order.append(repr(error) if response is None else response.text[:3])
        if len(order) == 1:
            loop.call_soon(order.append, "mark")
        if sum(entry != "mark" for entry in order) == count and not done.done():
            done.set_result(None)

    try:
        async with Client(f"http://127.0.0.1:{port}") as client:
            for index in range(count):
                client.send("GET", f"/{index}", answered)
            await asyncio.wait_for(done, 10)
    finally:
        listener.close()
    return order


def test_a_long_read_is_handed_to_the_core_in_slices_with_the_loop_running_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # While a read's responses are decoded, the loop must get to read the socket again
    # (the kernel acknowledges what the application reads): no read longer than a slice
    # reaches the core whole, and the mark a callback left on the loop runs before the
    # last response.
    import h2books.client.connection_h2 as connection_h2

    reads: list[int] = []
    handed: list[int] = []
    original_read = H2ClientProtocol.data_received
    original_process = H2ClientProtocol._process

    def read(self: H2ClientProtocol, data: bytes) -> None:
        reads.append(len(data))
        original_read(self, data)

    def process(self: H2ClientProtocol, data: bytes) -> None:
        handed.append(len(data))
        original_process(self, data)

    monkeypatch.setattr(H2ClientProtocol, "data_received", read)
    monkeypatch.setattr(H2ClientProtocol, "_process", process)
    count = 40  # ~320 KiB of responses in one write: dozens of slices
    assert count * 4000 > 4 * connection_h2.READ_SLICE
    order = run(_burst(_BurstServer(count), count))
    assert len(order) == count + 1 and "mark" in order
    assert order.index("mark") < count  # not after every response
    assert all(not entry.startswith("Remote") for entry in order)
    assert max(reads) > connection_h2.READ_SLICE  # the socket gave long reads...
    assert max(handed) <= connection_h2.READ_SLICE  # ...and the core got them in slices
    assert sum(handed) == sum(reads)


def test_what_was_read_before_the_server_closed_is_answered() -> None:
    # The responses and the close come together: the slices not handed to the core yet
    # when the end is read are decoded before the end fails what is left.
    count = 40
    order = run(_burst(_BurstServer(count, close_after=True), count))
    responses = [entry for entry in order if entry != "mark"]
    assert len(responses) == count
    assert all(entry.isdigit() for entry in responses), responses


def test_a_backlog_over_its_bound_pauses_reading_until_half_of_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import h2books.client.connection_h2 as connection_h2

    monkeypatch.setattr(connection_h2, "READ_SLICE", 1024)
    monkeypatch.setattr(connection_h2, "MAX_READ_BACKLOG", 8192)
    paused: list[bool] = []
    original = H2ClientProtocol.data_received

    def watching(self: H2ClientProtocol, data: bytes) -> None:
        original(self, data)
        assert self._transport is not None
        paused.append(not self._transport.is_reading())

    monkeypatch.setattr(H2ClientProtocol, "data_received", watching)
    count = 40
    order = run(_burst(_BurstServer(count), count))
    assert sorted(entry for entry in order if entry != "mark") == sorted(
        (str(2 * index + 1) * 3)[:3] for index in range(count)
    )
    assert any(paused)  # the reads of ~320 KiB went over the 8 KiB bound


def test_a_stream_refused_after_a_goaway_goes_to_the_next_connection() -> None:
    """GOAWAY naming every stream (the server will finish what it has), then REFUSED_STREAM
    on the request: not processed, so it goes again, on a new connection since this one
    takes no more requests (it failed before)."""
    goaway_sent: set[H2Session] = set()

    def behaviour(session: H2Session, stream_id: int, path: bytes) -> bool:
        if goaway_sent:
            return False  # the next connections answer
        goaway_sent.add(session)
        # Written by hand: the h2 library sends nothing (not even RST_STREAM) after its own GOAWAY.
        session.flush()
        session.sock.sendall(
            b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + struct.pack(">II", 2**31 - 1, 0)
        )
        session.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        return True

    stats = WireStats()
    with serving(h2_bookstore(behaviour)) as fake:
        [response] = fetch_all(fake.url, ["/book?id=1"], stats=stats)
    assert response.status == 200 and response.json()["id"] == "1"
    assert stats.connections == 2
