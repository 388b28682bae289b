"""Our HTTP/3 client (`Client(http3=True)`, `h2books crawl --http3`) against the real server."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.client import Client
from h2books.client.cli import main_crawl
from h2books.client.errors import ConnectError, TLSError
from h2books.client.stats import WireStats
from tests.client.test_crawl import crawl_json
from tests.conftest import ServerProcess
from tests.server.adapters.test_h3 import asgi
from tests.server.h3_support import h3_server, wait_udp_listening


@pytest.fixture(scope="module")
def h3_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("crawl-h3"), "--http3", "--no-access-log")
    process.start()
    wait_udp_listening(process.port)
    yield process
    process.stop()


def test_crawl_over_h3_gets_every_book_and_splits_the_bytes(
    capsys: pytest.CaptureFixture[str], h3_process: ServerProcess
) -> None:
    h3 = crawl_json(capsys, h3_process.url, "--http3", "--cacert", str(h3_process.ca))
    assert h3["ok"] is True and h3["http_version"] == "HTTP/3"
    assert h3["books"] == 3000 and h3["wire"]["connections"] == 1
    h1 = crawl_json(capsys, h3_process.url, "--http1", "--cacert", str(h3_process.ca))
    wire, h1_wire = h3["wire"], h1["wire"]
    # The same bodies, whatever the protocol; no request bodies.
    assert wire["received"]["body"] == h1_wire["received"]["body"] > 0
    assert wire["sent"]["body"] == 0
    # QPACK: a request's repeated fields are references, far fewer bytes than HTTP/1.1's.
    assert 0 < wire["sent"]["headers"] * 2 < h1_wire["sent"]["headers"]
    assert 0 < wire["received"]["headers"] < h1_wire["received"]["headers"]
    for side in ("sent", "received"):
        counts = wire[side]
        assert counts["framing"] > 0  # QUIC packet headers, ACKs, AEAD tags
        # The same fields uncompressed: QPACK saves most of them (3000 similar heads).
        assert counts["headers_plain"] > 3 * counts["headers"] > 0
        assert counts["total"] == counts["headers"] + counts["body"] + counts["framing"]


def test_report_names_udp_payloads(
    capsys: pytest.CaptureFixture[str], h3_process: ServerProcess
) -> None:
    code = main_crawl([h3_process.url, "--http3", "--cacert", str(h3_process.ca)])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "over HTTP/3 (TLS)" in out and "bytes on the wire (UDP payloads)" in out
    assert "header fields (QPACK)" in out and "%" in out.split("header fields (QPACK)")[1]


def test_bodies_both_ways_and_trailers(tmp_path: Path) -> None:
    async def main() -> None:
        async with h3_server(tmp_path, asgi()) as (_, port, ca):
            stats = WireStats()
            async with Client(
                f"https://localhost:{port}", http3=True, cacert=ca, stats=stats
            ) as client:
                echoed = await client.request("POST", "/echo", body=b"q" * 300_000)
                assert echoed.status == 200 and echoed.content == b"q" * 300_000
                assert echoed.http_version == "HTTP/3"
                trailed = await client.get("/trailers")
                assert trailed.trailers == [(b"x-checksum", b"42")]
                answers = await asyncio.gather(*(client.get("/stream") for _ in range(150)))
                assert {a.content for a in answers} == {b"part0;part1;part2;part3;part4;"}
            assert stats.sent.body == 300_000

    asyncio.run(asyncio.wait_for(main(), 60))


def test_unknown_ca_is_a_tls_failure(tmp_path: Path) -> None:
    async def main() -> None:
        async with h3_server(tmp_path, asgi()) as (_, port, _ca):
            with pytest.raises(TLSError, match="certificate"):
                async with Client(f"https://localhost:{port}", http3=True, timeout=5) as client:
                    await client.get("/stream")

    asyncio.run(asyncio.wait_for(main(), 60))


def test_nobody_listening_is_a_connect_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed

    async def main() -> None:
        with pytest.raises(ConnectError, match="HTTP/3"):
            async with Client(f"https://127.0.0.1:{port}", http3=True, timeout=3) as client:
                await client.get("/")

    asyncio.run(asyncio.wait_for(main(), 30))


def test_http3_needs_https() -> None:
    with pytest.raises(ValueError, match="https"):
        Client("http://localhost:8080", http3=True)


class _LossyRelay(asyncio.DatagramProtocol):
    """A UDP relay between one client and the server that drops a share of the datagrams
    both ways (seeded, so a failure can be replayed)."""

    def __init__(self, server_port: int, loss: float, seed: int) -> None:
        self.server_port = server_port
        self.loss = loss
        self.random = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.upstream: asyncio.DatagramTransport | None = None
        self.client: Any = None
        self.dropped = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _lost(self) -> bool:
        if self.random.random() < self.loss:
            self.dropped += 1
            return True
        return False

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.client = addr
        if self.upstream is not None and not self._lost():
            self.upstream.sendto(data)

    def back(self, data: bytes) -> None:
        if self.transport is not None and self.client is not None and not self._lost():
            self.transport.sendto(data, self.client)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: _LossyRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.relay.back(data)


@pytest.mark.slow
def test_crawl_with_one_percent_loss_gets_every_book_right(tmp_path: Path) -> None:
    """The issue's target: 3000 books over HTTP/3 with 1% loss each way, all correct."""
    from h2books.app import create_app
    from h2books.client.crawl import CrawlOptions, crawl

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with h3_server(tmp_path, create_app(tmp_path / "books")) as (_, port, ca):
            relay = _LossyRelay(port, loss=0.01, seed=11)
            front, _ = await loop.create_datagram_endpoint(
                lambda: relay, local_addr=("127.0.0.1", 0)
            )
            upstream, _ = await loop.create_datagram_endpoint(
                lambda: _Upstream(relay), remote_addr=("127.0.0.1", port)
            )
            relay.upstream = upstream
            front_port = front.get_extra_info("sockname")[1]
            options = CrawlOptions(
                url=f"https://localhost:{front_port}", http3=True, cacert=ca, timeout=60
            )
            result = await crawl(options)
            front.close()
            upstream.close()
        assert result.books == 3000 and result.http_version == "HTTP/3"
        assert relay.dropped >= 3  # about 1% of ~900 datagrams: lost, and recovered from

    asyncio.run(asyncio.wait_for(main(), 120))
