"""WebSocket sessions (server/websocket.py) through the real server: the `websockets` client
over HTTP/1.1 (wss:// with the local CA, ws:// on the cleartext port), an RFC 8441 client
over HTTP/2 (the `h2` library + wsproto frames), and raw sockets for frames no library
sends. The session is driven directly here; the ASGI layer has tests of its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import h2.errors
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from h2books.interfaces import ServerInterface
from h2books.server.config import ServerConfig
from h2books.server.exchange import Exchange
from h2books.server.responses import error_response
from h2books.server.websocket import (
    ClientDisconnected,
    Closed,
    HandshakeError,
    KeepAlive,
    WebSocket,
    negotiate_deflate,
    read_handshake,
)

from .websocket_support import (
    NOT_FOUND,
    H2WebSocketClient,
    ThreadedServer,
    iter_frames,
    masked_frame,
    raw_handshake,
    read_close,
    read_frames,
)


class SessionInterface(ServerInterface):
    """Echo over the session API. /slow waits for `release` before reading; /close-now
    closes at once after accepting."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.loop_release: asyncio.Event | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.sessions: list[WebSocket] = []
        self.closed_while_sending = threading.Event()

    def handle(self, exchange: Exchange) -> None:
        if exchange.upgrade != b"websocket":
            exchange.respond(NOT_FOUND)
            return
        try:
            handshake = read_handshake(exchange)
        except HandshakeError as exc:
            exchange.respond(error_response(400, str(exc)))
            return
        session = WebSocket(exchange, handshake, exchange.adapter.state.config)
        self.sessions.append(session)
        task = asyncio.get_running_loop().create_task(self.run(session, exchange.target))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, session: WebSocket, path: bytes) -> None:
        offered = session.handshake.subprotocols
        session.accept(offered[0] if offered else None)
        if path == b"/close-now":
            session.close(1000)
            return
        if path == b"/close-while-sending":
            await self.close_while_sending(session)
            self.closed_while_sending.set()
            return
        if path == b"/slow":
            while not self.release.is_set():
                await asyncio.sleep(0.01)  # the test thread sets a threading.Event
        while True:
            message = await session.receive()
            if isinstance(message, Closed):
                return
            await session.send(message)

    async def close_while_sending(self, session: WebSocket) -> None:
        """One task sends until the peer's unread output holds it in `send`; the app then
        closes, and the held send must not follow the Close frame (RFC 6455 §5.5.1)."""

        async def flood() -> None:
            with contextlib.suppress(ClientDisconnected):
                while True:
                    await session.send(b"f" * 65536)

        sender = asyncio.get_running_loop().create_task(flood())
        self.tasks.add(sender)
        sender.add_done_callback(self.tasks.discard)
        while session.exchange.writable and not sender.done():
            await asyncio.sleep(0)
        session.close(1000)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    def configure(config: ServerConfig) -> None:
        config.ws_max_size = 64 * 1024
        config.ws_max_queue = 2

    data_dir = tmp_path_factory.mktemp("ws")
    with ThreadedServer(data_dir, SessionInterface(), configure) as threaded:
        yield threaded


@pytest.fixture(params=["wss", "ws"])
def url(request: pytest.FixtureRequest, server: ThreadedServer) -> str:
    return server.wss if request.param == "wss" else server.ws


def _connect(server: ThreadedServer, url: str, **kwargs: object):  # type: ignore[no-untyped-def]
    ssl_context = server.threaded_client_context() if url.startswith("wss") else None
    return connect(url + "/echo", ssl=ssl_context, open_timeout=10, **kwargs)  # type: ignore[arg-type]


# -- HTTP/1.1 with the websockets client -------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_and_binary_over_h1(
    server: ThreadedServer, url: str, compression: str | None
) -> None:
    with _connect(server, url, compression=compression) as ws:
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert (extensions is not None) == (compression == "deflate")
        ws.send("héllo")
        assert ws.recv(timeout=5) == "héllo"
        ws.send(b"\x00\x01" * 1000)
        assert ws.recv(timeout=5) == b"\x00\x01" * 1000
        ws.send("x" * 50_000)  # compresses to little, and inflates under the limit
        assert ws.recv(timeout=5) == "x" * 50_000


def test_fragmented_message_and_ping(server: ThreadedServer, url: str) -> None:
    with _connect(server, url) as ws:
        ws.send(["frag", "ment", "ed"])
        assert ws.recv(timeout=5) == "fragmented"
        pong = ws.ping(b"1234")
        assert pong.wait(5)


def test_subprotocol_is_chosen(server: ThreadedServer) -> None:
    with _connect(server, server.ws, subprotocols=["chat.v2", "chat"]) as ws:
        assert ws.subprotocol == "chat.v2"


def test_message_too_big_is_1009(server: ThreadedServer, url: str) -> None:
    with _connect(server, url, compression=None) as ws:
        ws.send(b"x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_deflate_bomb_is_1009(server: ThreadedServer) -> None:
    # 64 KiB + 1 of zeros compresses to a few hundred bytes; it must not get through.
    with _connect(server, server.ws, compression="deflate") as ws:
        ws.send(b"\x00" * (4 * 1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# -- malformed input, raw ------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked_frame(0x1, b"unmasked", mask=False), 1002),
        (masked_frame(0x1, b"\xff\xfe not utf-8"), 1007),
        (masked_frame(0x3, b"reserved opcode"), 1002),
        (masked_frame(0x9, b"fragmented ping", fin=False), 1002),
        (masked_frame(0x0, b"continuation of nothing"), 1002),
        # What the fast path for small frames must leave to wsproto, too:
        (bytes([0xC1]) + masked_frame(0x1, b"rsv1 without deflate")[1:], 1002),
        (bytes([0x81, 0x80 | 126, 0, 5]) + b"\0\0\0\0" + b"short", 1002),  # non-minimal
        (masked_frame(0x1, b"a", fin=False) + masked_frame(0x2, b"b"), 1002),
    ],
)
def test_malformed_frames_get_the_rfc_close_code(
    server: ThreadedServer, frame: bytes, code: int
) -> None:
    sock, head = raw_handshake(server.http_port)
    with sock:
        assert head.startswith(b"HTTP/1.1 101 ")
        rest = head[head.index(b"\r\n\r\n") + 4 :]
        sock.sendall(frame)
        assert read_close(sock, rest) == code


def _raw_echo_socket(server: ThreadedServer) -> tuple[socket.socket, bytes]:
    sock, head = raw_handshake(server.http_port, "/echo")
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock, head[head.index(b"\r\n\r\n") + 4 :]


def test_a_burst_of_frames_past_the_queue_is_all_answered_in_order(
    server: ThreadedServer,
) -> None:
    # One write of 300 frames: parsing stops each time the queue (2 here) is full and
    # resumes as the app takes messages; none is lost, duplicated or reordered.
    sock, rest = _raw_echo_socket(server)
    with sock:
        messages = [f"m{i}".encode() * (1 + i % 40) for i in range(300)]
        sock.sendall(b"".join(masked_frame(0x1 + i % 2, m) for i, m in enumerate(messages)))
        assert read_frames(sock, 300, rest) == [(0x1 + i % 2, m) for i, m in enumerate(messages)]


def test_a_burst_in_one_read_queues_no_more_than_ws_max_queue(server: ThreadedServer) -> None:
    interface = server.server.interface
    assert isinstance(interface, SessionInterface)
    interface.release.clear()
    sock, head = raw_handshake(server.http_port, "/slow")
    try:
        session = interface.sessions[-1]
        burst = [b"%d" % i for i in range(100)]
        sock.sendall(b"".join(masked_frame(0x2, m) for m in burst))  # one read, in all
        deadline = time.monotonic() + 10
        while session.queued < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # the server's thread parses it
        assert session.queued == 2  # the rest waits, unparsed, in the tunnel
        interface.release.set()
        rest = head[head.index(b"\r\n\r\n") + 4 :]
        assert read_frames(sock, 100, rest) == [(0x2, m) for m in burst]
    finally:
        interface.release.set()
        sock.close()


def test_frames_arriving_a_byte_at_a_time_are_read_whole(server: ThreadedServer) -> None:
    sock, rest = _raw_echo_socket(server)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = masked_frame(0x1, "héllo".encode()) + masked_frame(0x2, b"b" * 300)
        stream += masked_frame(0x1, b"frag", fin=False) + masked_frame(0x0, b"ment")
        for byte in stream:
            sock.send(bytes([byte]))
        assert read_frames(sock, 3, rest) == [
            (0x1, "héllo".encode()),
            (0x2, b"b" * 300),
            (0x1, b"fragment"),
        ]


def test_no_data_frame_follows_the_close_frame(server: ThreadedServer) -> None:
    # A send held by backpressure when the app closes: once the output flows again it
    # must fail (ClientDisconnected), not put a data frame after our Close.
    interface = server.server.interface
    assert isinstance(interface, SessionInterface)
    interface.closed_while_sending.clear()
    sock, head = raw_handshake(server.http_port, "/close-while-sending")
    with sock:
        assert interface.closed_while_sending.wait(10)  # read nothing until the app closed
        frames = iter_frames(sock, head[head.index(b"\r\n\r\n") + 4 :])
        before = [opcode for opcode, _ in itertools.takewhile(lambda f: f[0] != 0x8, frames)]
        assert before and set(before) == {0x2}
        sock.sendall(masked_frame(0x8, (1000).to_bytes(2, "big")))
        assert [opcode for opcode, _ in frames] == []  # up to the end of the connection


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        (b"", "/missing-key"),
        (b"Sec-WebSocket-Version: 8\r\n", "/wrong-version"),
    ],
)
def test_handshake_without_the_right_fields_is_400(
    server: ThreadedServer, extra: bytes, path: str
) -> None:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        key = b"" if path == "/missing-key" else b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        version = b"" if extra else b"Sec-WebSocket-Version: 13\r\n"
        sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n%s%s%s\r\n"
            % (path.encode(), key, version, extra)
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


def test_websockets_client_sees_the_400(server: ThreadedServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(server.ws + "/x", open_timeout=5, additional_headers={"Sec-WebSocket-Version": "8"})
    assert refused.value.response.status_code == 400


# -- HTTP/2: RFC 8441 -------------------------------------------------------------


def test_echo_over_h2_extended_connect(server: ThreadedServer) -> None:
    client = H2WebSocketClient(server)
    try:
        assert client.status == 200
        assert b"sec-websocket-accept" not in client.headers  # RFC 8441 has no key
        client.send(TextMessage("over h2"))
        assert client.next_event() == TextMessage("over h2")
        client.send(BytesMessage(b"\x01\x02", message_finished=False))
        client.send(BytesMessage(b"\x03", message_finished=True))
        event = client.next_event()
        assert isinstance(event, BytesMessage) and event.data == b"\x01\x02\x03"
        client.send(Ping(b"p"))
        assert client.next_event() == Pong(b"p")
        # The close handshake, then END_STREAM both ways.
        client.send(CloseConnection(1000, "bye"))
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1000
        client.end_stream()
        client.wait_ended()
        assert client.reset_code is None
    finally:
        client.close()


def test_deflate_over_h2(server: ThreadedServer) -> None:
    client = H2WebSocketClient(server, deflate=True)
    try:
        assert client.headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
        client.send(TextMessage("z" * 10_000))
        event = client.next_event()
        assert isinstance(event, TextMessage) and event.data == "z" * 10_000
    finally:
        client.close()


def test_h2_handshake_without_version_is_400(server: ThreadedServer) -> None:
    client = H2WebSocketClient(server, version=b"8")
    try:
        assert client.status == 400
    finally:
        client.close()


def test_malformed_frame_over_h2_is_1002(server: ThreadedServer) -> None:
    client = H2WebSocketClient(server)
    try:
        client.send_raw(masked_frame(0x1, b"unmasked", mask=False))
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1002
    finally:
        client.close()


@pytest.mark.slow
def test_pings_from_a_peer_that_gives_no_window_stop_being_read(server: ThreadedServer) -> None:
    # Each Ping owes a Pong. A peer that never gives our stream window back, yet keeps
    # pinging, must not make the server queue Pongs without bound: parsing stops while
    # our output does not flow, so the peer's own window shuts.
    import select

    client = H2WebSocketClient(server, path="/echo")
    client.acknowledge = False
    try:
        sid = client.stream_id
        sent = 0
        while client.h2.local_flow_control_window(sid) >= 200 and sent < 20_000:
            client.send(Ping(b"p" * 125))
            sent += 1
            if sent % 100 == 0:  # read what came, acknowledging none of it
                while select.select([client.sock], [], [], 0.05)[0] or client.sock.pending():
                    client._read()
        # What the peer could send: its 1 MiB window, and what our 256 KiB queue
        # of Pongs let the server read before it stopped.
        assert sent * 131 < 2 * 1024 * 1024, sent
    finally:
        client.close()


def test_slow_app_shuts_the_peers_window(server: ThreadedServer) -> None:
    interface = server.server.interface
    assert isinstance(interface, SessionInterface)
    interface.release.clear()
    client = H2WebSocketClient(server, path="/slow")
    try:
        message = b"m" * 16_000
        sent = 0
        sid = client.stream_id
        while client.h2.local_flow_control_window(sid) >= 16_100 and sent < 1000:
            client.send(BytesMessage(message))
            sent += 1
        # A PING round trip: whatever credit the server would give is in by its ACK.
        client.h2.ping(b"12345678")
        client._flush()
        while not any(isinstance(e, h2.events.PingAckReceived) for e in client.events):
            client._read()
        # The app reads nothing: at most ws_max_queue messages (and one in hand) were
        # taken off the tunnel, too little to earn a WINDOW_UPDATE; the rest is the
        # window's (1 MiB) to hold, and the peer cannot send more.
        assert client.h2.local_flow_control_window(sid) < 16_100
        assert sent * len(message) < 2 * 1024 * 1024
        interface.release.set()
        for _ in range(sent):
            event = client.next_event()
            assert isinstance(event, BytesMessage) and len(event.data) == len(message)
        # The window came back as the app read.
        assert client.h2.local_flow_control_window(sid) > 16_100
    finally:
        interface.release.set()
        client.close()


def test_close_handshake_timeout_over_h2(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.ws_close_timeout = 0.2

    with ThreadedServer(tmp_path, SessionInterface(), configure) as threaded:
        client = H2WebSocketClient(threaded, path="/close-now")
        try:
            event = client.next_event()
            assert isinstance(event, CloseConnection) and event.code == 1000
            # We never answer: the server gives up on the stream.
            client.wait_ended()
            assert client.reset_code == h2.errors.ErrorCodes.CANCEL
        finally:
            client.close()


def test_close_handshake_timeout_over_h1(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.ws_close_timeout = 0.2

    with ThreadedServer(tmp_path, SessionInterface(), configure) as threaded:
        sock, head = raw_handshake(threaded.http_port, "/close-now")
        with sock:
            assert read_close(sock, head[head.index(b"\r\n\r\n") + 4 :]) == 1000
            with contextlib.suppress(ConnectionResetError):  # cut, or closed
                assert sock.recv(100) == b""


def test_keepalive_ping_then_timeout(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.ws_ping_interval = 0.2
        config.ws_ping_timeout = 0.2

    with ThreadedServer(tmp_path, SessionInterface(), configure) as threaded:
        sock, head = raw_handshake(threaded.http_port)
        with sock:
            data = head[head.index(b"\r\n\r\n") + 4 :]
            while len(data) < 2:
                data += sock.recv(100)
            assert data[0] == 0x89  # a ping, unanswered on purpose
            assert read_close(sock, data[2 + (data[1] & 0x7F) :]) == 1011


def test_shutdown_closes_with_1001(tmp_path: Path) -> None:
    with ThreadedServer(tmp_path, SessionInterface()) as threaded:
        h2_client = H2WebSocketClient(threaded)
        with connect(threaded.ws + "/echo", open_timeout=5) as h1:
            h1.send("before")
            assert h1.recv(timeout=5) == "before"
            threaded.stop()
            with pytest.raises(ConnectionClosed) as closed:
                h1.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            event = h2_client.next_event()
            assert isinstance(event, CloseConnection) and event.code == 1001
            assert h2_client.goaway or not h2_client.ended
            h2_client.close()  # the h2 library can answer nothing after a GOAWAY
            assert threaded.stopped.wait(10)


def test_a_clean_close_over_tls_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The client's TLS close_notify after the close handshake reaches the tunnel as EOF;
    # asyncio warns when a protocol asks to stay half-open over TLS (it cannot).
    with (
        caplog.at_level(logging.WARNING, logger="asyncio"),
        ThreadedServer(tmp_path, SessionInterface()) as threaded,
    ):
        for _ in range(3):
            with connect(
                threaded.wss + "/echo", ssl=threaded.threaded_client_context(), open_timeout=5
            ) as ws:
                ws.send("bye")
                assert ws.recv(timeout=5) == "bye"
            assert ws.close_code == 1000
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# -- rules, without a clock ---------------------------------------------------------


def test_keepalive_rules() -> None:
    rules = KeepAlive(20.0, 5.0, now=100.0)
    assert rules.deadline() == 120.0
    assert rules.check(119.9) is None
    rules.last_heard = 110.0  # the peer spoke: no ping yet
    assert rules.check(120.0) is None and rules.deadline() == 130.0
    assert rules.check(130.0) == "ping"
    assert rules.deadline() == 135.0
    assert rules.check(134.0) is None
    rules.pong()
    assert rules.deadline() == 130.0  # silent since 110: a ping is due again
    assert rules.check(136.0) == "ping"
    assert rules.check(141.0) == "dead"
    assert KeepAlive(None, 5.0, 0.0).deadline() is None
    assert KeepAlive(None, 5.0, 0.0).check(1e9) is None


def test_deflate_negotiation_takes_the_first_acceptable_offer() -> None:
    assert negotiate_deflate(["x-webkit-deflate-frame"]) is None
    agreed = negotiate_deflate(
        [
            "permessage-deflate; server_max_window_bits=99",
            "permessage-deflate; client_max_window_bits",
        ]
    )
    assert agreed is not None
    assert agreed[1] == "permessage-deflate; client_max_window_bits=15"


def test_a_small_frame_over_a_smaller_limit_is_1009(tmp_path: Path) -> None:
    """A limit below the size our own frame reader takes (FAST_PAYLOAD): a whole, small
    frame over it gets 1009 as a big one does from wsproto."""

    def configure(config: ServerConfig) -> None:
        config.ws_max_size = 1000

    with (
        ThreadedServer(tmp_path, SessionInterface(), configure) as threaded,
        connect(threaded.ws + "/echo", open_timeout=10, compression=None) as ws,
    ):
        ws.send(b"x" * 1000)  # at the limit: served
        assert ws.recv(timeout=5) == b"x" * 1000
        ws.send(b"x" * 1001)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_messages_read_while_closing_are_counted_each_on_its_own(
    server: ThreadedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """After our Close, the peer's messages are read and dropped until its Close: many
    small ones (together over ws_max_size) are no "message too big" failure."""
    caplog.set_level(logging.INFO, logger="h2books.server")
    sock, head = raw_handshake(server.http_port, "/close-now")
    with sock:
        assert read_close(sock, head[head.index(b"\r\n\r\n") + 4 :]) == 1000
        sock.sendall(masked_frame(0x2, b"x" * 1000) * 100)  # 100 KB, the limit is 64 KiB
        sock.sendall(masked_frame(0x8, (1000).to_bytes(2, "big")))
        assert read_frames(sock, 1) == []  # the end of the connection, nothing more
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
