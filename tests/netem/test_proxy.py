"""The delay proxy's UDP side: datagrams are delayed and, unlike TCP, really lost."""

from __future__ import annotations

import socket
import threading
import time

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
    assert 0.040 <= elapsed < 0.040 + 0.5


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
