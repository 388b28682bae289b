"""Crawls through the emulated link (and through the delay proxy): round trips, loss, books."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from h2books.bench.client_main import CLIENTS, Crawl, _timed
from h2books.client import Client
from h2books.client.cli import main_crawl
from h2books.client.crawl import CrawlOptions, crawl, run
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink
from h2books.netem.network import emulated_network
from h2books.netem.proxy import DelayProxy
from tests.conftest import ServerProcess
from tests.netem.conftest import BOOK_COUNT, ours, require_namespaces

RTT = 0.050


def _crawl_cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main_crawl([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


async def _books(url: str, ca: Path, connect_to: tuple[str, int] | None = None) -> dict[str, bytes]:
    async with Client(url, cacert=ca, connect_to=connect_to) as client:
        ids = (await client.get("/")).json()
        answers = await asyncio.gather(*(client.get(f"/book?id={i}") for i in ids))
    return {str(i): answer.content for i, answer in zip(ids, answers, strict=True)}


@pytest.mark.slow
def test_an_h1_crawl_pays_one_round_trip_per_request(
    capsys: pytest.CaptureFixture[str], small_server: ServerProcess
) -> None:
    require_namespaces()
    before = ours()
    result = _crawl_cli(
        capsys, small_server.url, "--cacert", str(small_server.ca), "--http1",
        "--concurrency", "1", "--rtt", "50ms",
    )  # fmt: skip
    assert result["books"] == BOOK_COUNT
    # TCP handshake, TLS 1.3 handshake, then the index and each book one after the other.
    round_trips = 2 + 1 + BOOK_COUNT
    assert result["wall_s"] >= round_trips * RTT
    assert result["wall_s"] < round_trips * RTT + 2.0
    assert result["network"]["kind"] == "namespaces"
    assert "RTT 50 ms" in result["network"]["description"]
    assert ours() == before


def test_an_h2_crawl_multiplexes_the_books_into_one_round_trip(
    capsys: pytest.CaptureFixture[str], small_server: ServerProcess
) -> None:
    require_namespaces()
    result = _crawl_cli(capsys, small_server.url, "--cacert", str(small_server.ca), "--rtt", "50ms")
    assert result["books"] == BOOK_COUNT
    # TCP, TLS, the index, then every book at once: 4 round trips, far from 2 + 1 + 12.
    assert 4 * RTT <= result["wall_s"] < 4 * RTT + 0.5
    # Closing is timed apart: our client waits for the server's close_notify, a round trip
    # that the crawl's wall time does not include.
    assert result["close_s"] >= RTT
    assert result["network"]["description"].startswith("RTT 50 ms")


def test_the_bench_times_every_client_from_first_request_to_last_book(
    small_server: ServerProcess,
) -> None:
    """The bench's `wall` leaves closing out, for ours (which waits a round trip for the
    server's close_notify) as for the others."""
    require_namespaces()
    with EmulatedLink(Conditions(rtt=RTT)) as link, link.client_side():
        for name in ("ours", "requests"):
            crawl_ = Crawl(small_server.url, small_server.ca, http2=name == "ours")
            started = time.perf_counter()
            figures = _timed(CLIENTS[name], crawl_)
            elapsed = time.perf_counter() - started
            assert figures["requests"] == BOOK_COUNT + 1
            # h2: TCP, TLS, the index, the books; h1 one at a time: TCP, TLS, 1 + 12.
            round_trips = 4 if name == "ours" else 2 + 1 + BOOK_COUNT
            assert round_trips * RTT <= figures["wall"] < elapsed
            if name == "ours":
                assert elapsed - figures["wall"] >= RTT  # the close_notify round trip


def test_books_through_the_link_are_the_books(small_server: ServerProcess) -> None:
    require_namespaces()
    direct = run(lambda: _books(small_server.url, small_server.ca))
    with EmulatedLink(Conditions(rtt=0.020, bandwidth=20e6)) as link, link.client_side():
        emulated = run(lambda: _books(small_server.url, small_server.ca))
    assert len(direct) == BOOK_COUNT
    assert emulated == direct


def _retransmitted_segments() -> int:
    """TCP RetransSegs of the calling thread's namespace (the client's: only our crawl's)."""
    lines = Path("/proc/thread-self/net/snmp").read_text().splitlines()
    tcp = [line.split() for line in lines if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index("RetransSegs")])


@pytest.mark.slow
def test_loss_makes_tcp_retransmit_and_the_crawl_still_completes(
    small_server: ServerProcess,
) -> None:
    require_namespaces()
    options = CrawlOptions(
        small_server.url, http2=False, concurrency=1, cacert=small_server.ca, request_timeout=None
    )
    with EmulatedLink(Conditions(rtt=0.010, loss=0.10), seed=3) as link, link.client_side():
        results = [run(lambda: crawl(options)) for _ in range(3)]
        retransmitted = _retransmitted_segments()
    assert [result.books for result in results] == [BOOK_COUNT] * 3
    assert link.stats["up"]["lost"] > 0 and link.stats["down"]["lost"] > 0
    assert retransmitted > 0


def test_the_delay_proxy_delays_and_says_tcp_sees_no_loss(small_server: ServerProcess) -> None:
    conditions = Conditions(rtt=RTT, loss=0.01)
    with DelayProxy(conditions, ("127.0.0.1", small_server.port)) as proxy:
        assert "NO loss over TCP" in proxy.describe()
        options = CrawlOptions(
            small_server.url, http2=False, concurrency=1, cacert=small_server.ca,
            connect_to=proxy.address,
        )  # fmt: skip
        result = run(lambda: crawl(options))
        books = run(lambda: _books(small_server.url, small_server.ca, proxy.address))
    assert result.books == BOOK_COUNT
    # The proxy's own accept costs no round trip; TLS, the index and each book do.
    assert result.wall >= (1 + 1 + BOOK_COUNT) * RTT
    assert books == run(lambda: _books(small_server.url, small_server.ca))


def test_the_fallback_network_is_the_proxy_and_says_so(small_server: ServerProcess) -> None:
    conditions = Conditions(rtt=0.020, loss=0.01)
    target = ("127.0.0.1", small_server.port)
    with emulated_network(conditions, target, method="proxy") as network:
        assert network.kind == "proxy"
        assert network.connect_to is not None
        assert "NO loss over TCP" in network.description
        with network.client_side():  # nothing to enter: the proxy is on the loopback
            books = run(lambda: _books(small_server.url, small_server.ca, network.connect_to))
    assert len(books) == BOOK_COUNT
