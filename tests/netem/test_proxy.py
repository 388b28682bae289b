"""The delay proxy: UDP datagrams delayed and really lost; TCP relayed whole, with back-pressure."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

import pytest

from h2books.netem.conditions import Conditions
from h2books.netem.proxy import DelayProxy


def _udp_echo() -> tuple[socket.socket, int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)

    def serve() -> None:
        while True:
            try:
                data, peer = server.recvfrom(2048)
            except OSError:
                return
            server.sendto(data, peer)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_a_datagram_takes_the_rtt_there_and_back() -> None:
    server, port = _udp_echo()
    with server, DelayProxy(Conditions(rtt=0.040), ("127.0.0.1", port)) as proxy:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(5)
        with client:
            started = time.perf_counter()
            client.sendto(b"ping", ("127.0.0.1", proxy.udp_port))
            data, _ = client.recvfrom(2048)
            elapsed = time.perf_counter() - started
    assert data == b"ping"
    assert elapsed >= 0.040


def test_udp_loses_datagrams_at_the_loss_rate() -> None:
    server, port = _udp_echo()
    with server, DelayProxy(Conditions(loss=0.3), ("127.0.0.1", port), seed=5) as proxy:
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.settimeout(0.5)
        received = 0
        with client:
            for number in range(200):
                client.sendto(number.to_bytes(2, "big"), ("127.0.0.1", proxy.udp_port))
                time.sleep(0.001)
            try:
                while True:
                    client.recvfrom(2048)
                    received += 1
            except TimeoutError:
                pass
    # Each way 30%: about 49% come back (200 * 0.7 * 0.7 = 98).
    assert 60 <= received <= 140


def _tcp_server(handle: object) -> tuple[socket.socket, int]:
    """A TCP listener on the loopback; each connection handled by `handle` in a thread."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()  # type: ignore[arg-type]

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def _echo(connection: socket.socket) -> None:
    with connection:
        while data := connection.recv(65536):
            connection.sendall(data)


@pytest.mark.parametrize(
    "conditions", [Conditions(loss=0.01), Conditions(bandwidth=100e6), Conditions()]
)
def test_at_rtt_zero_the_first_bytes_of_every_connection_arrive(conditions: Conditions) -> None:
    # The client's first bytes (a ClientHello) reach the proxy before its upstream
    # connection is up; they must wait for it, not vanish.
    listener, port = _tcp_server(_echo)
    with listener, DelayProxy(conditions, ("127.0.0.1", port)) as proxy:
        for number in range(100):
            with socket.create_connection(proxy.address, timeout=5) as client:
                message = f"hello {number}".encode()
                client.sendall(message)
                received = b""
                while len(received) < len(message):
                    chunk = client.recv(64)
                    assert chunk, f"connection {number}: closed after {received!r}"
                    received += chunk
                assert received == message


def test_a_receiver_that_does_not_read_stops_the_relay() -> None:
    # The server accepts and never reads: the proxy must stop reading the client once
    # its queue and the upstream transport's buffer are full, not buffer without end.
    held: list[socket.socket] = []
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)  # inherited on accept
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def accept() -> None:
        with contextlib.suppress(OSError):
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    queue = 200_000
    target = 64 << 20
    conditions = Conditions(rtt=0.002, queue_bytes=queue)
    with listener, DelayProxy(conditions, ("127.0.0.1", listener.getsockname()[1])) as proxy:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65_536)
        client.connect(proxy.address)
        client.setblocking(False)
        chunk = b"x" * 65_536
        sent = 0
        with client:
            while sent < target:  # until nothing more is taken for half a second
                _, writable, _ = select.select([], [client], [], 0.5)
                if not writable:
                    break
                try:
                    sent += client.send(chunk)
                except BlockingIOError:
                    continue
        for connection in held:
            connection.close()
    # The kernel's buffers on the proxy's two sockets take a few MB; the proxy itself
    # holds at most the queue, one read and the transport's high-water mark.
    assert sent < 24 << 20, f"{sent} bytes taken in by a relay whose receiver reads nothing"
