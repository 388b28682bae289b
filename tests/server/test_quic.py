"""The QUIC endpoint's bounds over real UDP: garbage, Retry, the cap, amplification, versions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode

from h2books.http import Request, Response
from h2books.server.config import ServerConfig
from tests.server.h3_support import h3_server, oracle

AUTHORITY = b"localhost"


def hello(request: Request) -> Response:
    return Response(200, [(b"content-type", b"text/plain")], b"hello")


async def hello_slowly(request: Request) -> Response:
    if request.path == "/slow":
        await asyncio.sleep(0.5)
    return hello(request)


def first_initial(port: int) -> bytes:
    """A real client's first datagram (an Initial padded to 1,200 bytes), from aioquic."""
    client = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN))
    client.connect(("127.0.0.1", port), now=time.monotonic())
    (datagram, _), *_ = client.datagrams_to_send(now=time.monotonic())
    return datagram


class RawPeer(asyncio.DatagramProtocol):
    """A UDP socket that counts what the server sends it and never answers."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)


async def raw_peer(port: int) -> tuple[asyncio.DatagramTransport, RawPeer]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(
        RawPeer, remote_addr=("127.0.0.1", port), family=socket.AF_INET
    )
    return transport, peer


def test_garbage_datagrams_are_dropped_and_the_server_keeps_serving(tmp_path: Path) -> None:
    async def main() -> None:
        async with h3_server(tmp_path, hello) as (server, port, ca):
            transport, _peer = await raw_peer(port)
            junk = [
                b"",
                b"\x00",
                os.urandom(20),
                b"\xc0" + os.urandom(1300),  # a long header that does not parse
                b"\xc3\x00\x00\x00\x01" + os.urandom(1200),  # an Initial of nonsense
                b"\x40" + os.urandom(60),  # a short header for no connection
                bytes(1500),
            ]
            for data in junk * 20:
                transport.sendto(data)
            async with oracle(port, ca) as client:
                answer = await client.request(b"GET", b"/", AUTHORITY)
                assert answer.status == 200 and answer.body == b"hello"
            assert server.quic.dropped >= 5 * 20
            assert len(server.quic.connections) <= 1 + 20  # nonsense Initials: no handshake
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.slow
def test_no_amplification_beyond_three_times_before_validation(tmp_path: Path) -> None:
    """A spoofed Initial (its sender never answers) gets at most 3x its size back, however
    long the server retransmits its handshake."""

    async def main() -> None:
        async with h3_server(tmp_path, hello) as (_server, port, _ca):
            transport, peer = await raw_peer(port)
            initial = first_initial(port)
            assert len(initial) >= 1200
            transport.sendto(initial)
            await asyncio.sleep(3.0)  # several probe timeouts of the server's handshake
            sent_back = sum(len(data) for data in peer.received)
            assert 0 < sent_back <= 3 * len(initial)
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_retry_validates_the_address_first(tmp_path: Path) -> None:
    def configure(config: ServerConfig) -> None:
        config.quic_retry = True

    async def main() -> None:
        async with h3_server(tmp_path, hello, configure) as (server, port, ca):
            # The bare Initial gets only a Retry, a packet smaller than itself.
            transport, peer = await raw_peer(port)
            initial = first_initial(port)
            transport.sendto(initial)
            for _ in range(50):
                if peer.received:
                    break
                await asyncio.sleep(0.01)
            assert len(peer.received) == 1 and len(peer.received[0]) < len(initial)
            assert peer.received[0][0] & 0xF0 == 0xF0  # long header, type Retry
            assert not server.quic.connections
            transport.close()
            # A real client follows the Retry with its token and gets its answer.
            async with oracle(port, ca) as client:
                answer = await client.request(b"GET", b"/", AUTHORITY)
                assert answer.status == 200
            assert server.quic.retries == 2

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_forged_token_is_refused(tmp_path: Path) -> None:
    async def main() -> None:
        async with h3_server(tmp_path, hello) as (server, port, _ca):
            configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
            configuration.token = os.urandom(64)
            client = QuicConnection(configuration=configuration)
            client.connect(("127.0.0.1", port), now=time.monotonic())
            transport, peer = await raw_peer(port)
            for data, _ in client.datagrams_to_send(now=time.monotonic()):
                transport.sendto(data)
            for _ in range(50):
                if peer.received:
                    break
                await asyncio.sleep(0.01)
            for data in peer.received:
                client.receive_datagram(data, ("127.0.0.1", port), now=time.monotonic())
            # The client now drains: it was told why (its ConnectionTerminated comes later).
            close = client._close_event
            assert close is not None and close.error_code == QuicErrorCode.INVALID_TOKEN
            assert len(peer.received) == 1 and len(peer.received[0]) < 1200
            assert not server.quic.connections
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_connection_cap_refuses_or_evicts(tmp_path: Path) -> None:
    """At --max-connections a busy connection is kept and the newcomer refused; an idle
    one is evicted to make room (the TCP listeners' rule)."""

    def configure(config: ServerConfig) -> None:
        config.limits.max_connections = 1

    async def main() -> None:
        async with (
            h3_server(tmp_path, hello_slowly, configure) as (server, port, ca),
            oracle(port, ca) as first,
        ):
            _, busy = first.open(b"GET", b"/slow", AUTHORITY)
            await asyncio.sleep(0.05)
            with pytest.raises(ConnectionError):
                async with oracle(port, ca) as second:
                    await second.request(b"GET", b"/", AUTHORITY)
            assert server.quic.refused >= 1
            assert (await asyncio.wait_for(busy, 10)).status == 200
            # Now the first connection is idle: a newcomer takes its place.
            async with oracle(port, ca) as third:
                assert (await third.request(b"GET", b"/", AUTHORITY)).status == 200
            closed = await asyncio.wait_for(first.terminated, 10)
            assert closed.reason_phrase == "server at its connection limit"

    asyncio.run(asyncio.wait_for(main(), 30))


def test_unknown_version_gets_version_negotiation(tmp_path: Path) -> None:
    async def main() -> None:
        async with h3_server(tmp_path, hello) as (_server, port, _ca):
            transport, peer = await raw_peer(port)
            initial = bytearray(first_initial(port))
            initial[1:5] = b"\x1a\x2a\x3a\x4a"  # a reserved version (RFC 9000 §15)
            transport.sendto(bytes(initial))
            for _ in range(50):
                if peer.received:
                    break
                await asyncio.sleep(0.01)
            (answer,) = peer.received
            assert answer[1:5] == b"\x00\x00\x00\x00"  # Version Negotiation
            assert b"\x00\x00\x00\x01" in answer  # QUIC v1 offered
            # A datagram under 1,200 bytes gets nothing at all.
            transport.sendto(bytes(initial[:600]))
            await asyncio.sleep(0.1)
            assert len(peer.received) == 1
            transport.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_ended_connections_leave_no_routes(tmp_path: Path) -> None:
    """Each connection keeps its own ids, so the endpoint forgets them without a scan:
    with many connections open and then closed, every id routes to its owner and none
    is left behind."""

    async def main() -> None:
        async with h3_server(tmp_path, hello) as (server, port, ca):
            endpoint = server.quic
            async with contextlib.AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(oracle(port, ca)) for _ in range(12)]
                answers = await asyncio.gather(
                    *(client.request(b"GET", b"/", AUTHORITY) for client in clients)
                )
                assert all(answer.status == 200 for answer in answers)
                assert len(endpoint.connections) == 12
                routed = {cid for c in endpoint.connections for cid in c.connection_ids}
                assert routed == set(endpoint._by_id)
                assert all(endpoint._by_id[cid] in endpoint.connections for cid in routed)
                assert all(
                    endpoint._by_id[cid] is c
                    for c in endpoint.connections
                    for cid in c.connection_ids
                )
                # A connection ends: only its ids go.
                first = next(iter(endpoint.connections))
                first_ids = set(first.connection_ids)
                assert first_ids
                first.abort()
                assert first not in endpoint.connections and not first.connection_ids
                assert set(endpoint._by_id) == routed - first_ids
                assert len({id(owner) for owner in endpoint._by_id.values()}) == 11
            for _ in range(200):  # the clients closed: the server drains, then forgets
                if not endpoint.connections:
                    break
                await asyncio.sleep(0.05)
            assert not endpoint.connections and not endpoint._by_id

    asyncio.run(asyncio.wait_for(main(), 30))
