"""Where the push crawl's time goes after the bytes: a client-side timeline at 50 ms RTT.

    python benchmarks/push_timeline.py [--rtt 50ms] [--rounds 2]     # root (namespaces + TUN)

Runs `crawl --push` and the fetch of the same bytes through the link emulator, as
`push_transfer.py` does, with this process's client reads timed: each `data_received` (and
each backlog slice) records when it started, its bytes and how long the client spent on it.
Reads closer than 10 ms are one burst (a TCP flight); per burst it prints when it started,
its span, its bytes and the client's busy time. Then, for the crawl, where the steps after
the last read end (the index's ids, the window's set-up, the window's pass over the books),
in ms after the end of the last read. A burst whose busy time is near its span means the
client, not the network, sets the pace. Diagnostic only: it wraps private methods.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from push_transfer import fetch_bytes, push_crawl, serve_store_and_payload

from h2books.argtypes import duration
from h2books.client import connection_h2, crawl
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink

BURST_GAP = 0.010
reads: list[tuple[float, int, float]] = []  # (start, bytes or -1 for a slice, seconds busy)
steps: dict[str, float] = {}


def _timed_read(method: Callable[..., None], size: Callable[[tuple[Any, ...]], int]) -> Any:
    def timed(self: Any, *args: Any) -> None:
        started = time.perf_counter()
        method(self, *args)
        reads.append((started, size(args), time.perf_counter() - started))

    return timed


def _marked(name: str, method: Callable[..., Any]) -> Any:
    def marked(*args: Any) -> Any:
        result = method(*args)
        steps[name] = time.perf_counter()
        return result

    return marked


def install() -> None:
    protocol = connection_h2.H2ClientProtocol
    protocol.data_received = _timed_read(protocol.data_received, lambda a: len(a[0]))  # type: ignore[method-assign]
    protocol._next_slice = _timed_read(protocol._next_slice, lambda a: -1)  # type: ignore[method-assign]
    crawl._book_ids = _marked("index ids", crawl._book_ids)  # type: ignore[assignment]
    crawl._Window.__init__ = _marked("window set up", crawl._Window.__init__)  # type: ignore[method-assign]
    crawl._Window.start = _marked("window done", crawl._Window.start)  # type: ignore[method-assign]


def report(name: str, wall: float) -> None:
    bursts: list[list[float]] = []  # start, end, bytes, busy, reads
    for started, size, busy in reads:
        if not bursts or started - bursts[-1][1] > BURST_GAP:
            bursts.append([started, started, 0, 0.0, 0])
        burst = bursts[-1]
        burst[1] = max(burst[1], started + busy)
        burst[2] += max(size, 0)
        burst[3] += busy
        burst[4] += 1
    first = reads[0][0]
    print(f"{name}: wall {wall * 1e3:.1f} ms, {sum(max(r[1], 0) for r in reads)} bytes read")
    for start, end, size, busy, count in bursts:
        print(
            f"  burst at +{(start - first) * 1e3:6.1f} ms: span {(end - start) * 1e3:6.1f} ms, "
            f"{int(size):7d} bytes, client busy {busy * 1e3:5.1f} ms, {int(count)} reads"
        )
    last = max(started + busy for started, _, busy in reads)
    if steps:
        marks = ", ".join(f"{step} +{(at - last) * 1e3:.2f}" for step, at in steps.items())
        print(f"  after the last read (ms): {marks}")
    reads.clear()
    steps.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt", type=duration, default=0.050, help="e.g. 50ms")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    install()
    with contextlib.ExitStack() as stack:
        store_url, payload_url, ca = serve_store_and_payload(stack)
        with EmulatedLink(Conditions(rtt=args.rtt)) as link, link.client_side():
            size = push_crawl(store_url, ca).wire.received.total  # warm-up
            asyncio.run(fetch_bytes(payload_url, ca, size))
            for _ in range(args.rounds):
                reads.clear()
                steps.clear()
                report("crawl --push", push_crawl(store_url, ca).wall)
                report(f"GET /bytes/{size}", asyncio.run(fetch_bytes(payload_url, ca, size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
