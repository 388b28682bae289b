"""`crawl --push` against one response of the same size, through the same emulated link.

    python benchmarks/push_transfer.py                  # RTT 50 ms, 7 rounds (root)
    python benchmarks/push_transfer.py --rtt 100ms --rounds 5

Issue 11 asks that `h2books crawl --push` at 50 ms RTT take at most 3 round trips plus the
transfer time. The transfer time of the store (~0.86 MB before TLS) is not its size over
the link's rate: a new TCP connection starts from a window of 10 segments and doubles it
each round trip (slow start), so it depends on the link and the kernel. This measures it
instead of estimating it: one GET of ``/bytes/N`` over a fresh HTTP/2 connection, N being
the bytes the push crawl received, through the same link, timed as the crawl is (from the
first connection attempt to the last byte; closing apart). That fetch is TCP + TLS + one
request, 3 round trips, plus the transfer of those bytes: the crawl meets the target when
it takes no longer than the fetch.

Starts the bookstore (``h2books serve --push``) and the payload app
(``--app h2books.bench.payload:create_payload_app``), both pinned to core 0, builds the
link (network namespaces + TUN: root), and alternates the two fetches round by round from
this process, pinned to core 1 (the link's forwarder runs on every core: it does not
inherit the pinning). Prints the medians, the ranges, and the median of the per-round
ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from big_response import SRC, _wait_for, start_server, stop_server

from h2books.argtypes import duration
from h2books.client import Client
from h2books.client.crawl import CrawlOptions, CrawlResult, crawl, run
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink

PAYLOAD_APP = "h2books.bench.payload:create_payload_app"


async def fetch_bytes(url: str, ca: Path, size: int) -> float:
    """Seconds from connecting to the last byte of ``/bytes/size`` (closing not counted)."""
    client = Client(url, cacert=ca, max_response_size=size + 1)
    started = time.perf_counter()  # after the TLS context is made, as in the crawl
    try:
        await client.connect()
        response = await client.get(f"/bytes/{size}")
        elapsed = time.perf_counter() - started
    finally:
        await client.aclose()
    if response.status != 200 or len(response.content) != size:
        raise SystemExit(f"/bytes/{size}: status {response.status}, {len(response.content)} bytes")
    return elapsed


def push_crawl(url: str, ca: Path) -> CrawlResult:
    result = run(lambda: crawl(CrawlOptions(url, cacert=ca, push=True)))
    if result.pushed != result.books:
        raise SystemExit(f"only {result.pushed} of {result.books} books came pushed")
    return result


def serve_store_and_payload(stack: contextlib.ExitStack) -> tuple[str, str, Path]:
    """The bookstore (``--push``) and the payload app, pinned to core 0 and stopped with
    `stack`, then this process pinned to core 1: (store URL, payload URL, CA)."""
    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    ca = data_dir / "tls" / "ca.pem"
    store, store_port = start_server(SRC, data_dir, 0, "--push")
    stack.callback(stop_server, store)
    _wait_for(store_port, ca, store, path="/book?id=1")
    payload, payload_port = start_server(SRC, data_dir, 0, "--app", PAYLOAD_APP)
    stack.callback(stop_server, payload)
    _wait_for(payload_port, ca, payload)
    if len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {1})
    return f"https://localhost:{store_port}", f"https://localhost:{payload_port}", ca


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=duration, default=0.050, help="e.g. 50ms")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        store_url, payload_url, ca = serve_store_and_payload(stack)
        crawls: list[float] = []
        fetches: list[float] = []
        client_cpu: list[float] = []
        size = 0
        with EmulatedLink(Conditions(rtt=args.rtt)) as link, link.client_side():
            size = push_crawl(store_url, ca).wire.received.total  # warm-up, not recorded
            asyncio.run(fetch_bytes(payload_url, ca, size))
            for _ in range(args.rounds):
                result = push_crawl(store_url, ca)
                crawls.append(result.wall)
                client_cpu.append(result.user + result.sys)
                fetches.append(asyncio.run(fetch_bytes(payload_url, ca, size)))
    rtt_ms = args.rtt * 1e3
    ratios = [crawl_ / fetch for crawl_, fetch in zip(crawls, fetches, strict=True)]
    fetch = statistics.median(fetches)

    def line(name: str, times: list[float]) -> str:
        median = statistics.median(times)
        return (
            f"  {name:<40} median {median * 1e3:6.0f} ms ({median / args.rtt:4.1f} RTT), "
            f"{min(times) * 1e3:.0f}-{max(times) * 1e3:.0f} ms"
        )

    print(f"RTT {rtt_ms:g} ms (namespaces + TUN), {args.rounds} rounds, alternated")
    print(line("crawl --push (3000 books, pushed)", crawls))
    print(line(f"GET /bytes/{size} (the same bytes)", fetches))
    print(
        f"  3 RTT + transfer = the fetch: {fetch * 1e3:.0f} ms; transfer {fetch - 3 * args.rtt:.3f} s"
    )
    print(
        f"  crawl / fetch: {statistics.median(crawls) / fetch:.3f} (per round "
        f"{statistics.median(ratios):.3f}, {min(ratios):.3f}-{max(ratios):.3f}); "
        f"crawl client CPU {statistics.median(client_cpu) * 1e3:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
