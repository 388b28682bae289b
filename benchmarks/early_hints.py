"""The storefront's page load in Chromium with and without 103 Early Hints, over an emulated link.

    sudo flock /tmp/bench.lock python benchmarks/early_hints.py --rtt 0,50,100 --think 0,200

Three servers per think time, all `python -m h2books.bench.thinking` over one catalogue:
``no-hints`` (``--no-early-hints``), ``hints`` (the default: a 103 with one
``rel=preload`` link per asset of ``/store``) and ``push`` (``--push``: the hints plus the
assets pushed over HTTP/2, when the client allows it). Think time is how long the server
takes to compute ``/store`` after the 103 left (0: the 103 and the 200 leave together).

Headless Chromium (Debian's, through Playwright) runs in the client namespace of an
`EmulatedLink` (root needed) and loads ``https://localhost:PORT/store`` LOADS times per
variant, the variants taking turns in a rotating order, each load in a fresh browser
context (empty cache, new connection; one untimed load per variant first). It trusts the
local CA through the NSS database of a HOME of its own (``h2books cert --trust``); no
certificate flag is passed. Per load, from the page's Navigation and Resource Timing
(milliseconds from the navigation's start, TCP and TLS set-up included):

- ``document_end``: the page's HTML fully received (after the think time);
- ``assets``: the last of the page's three assets (CSS, JS, icon) fully received;
- ``load``: the load event's end; ``lcp``: largest contentful paint;
- ``ready``: the catalogue rendered (the script fetched /books.json and drew 3000 books).

It prints median and min-max per variant, and with ``--json`` writes every load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from h2books.argtypes import durations
from h2books.bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink

VARIANTS: dict[str, list[str]] = {
    "no-hints": ["--no-early-hints"],
    "hints": [],
    "push": ["--push"],
}
METRICS = ("document_end", "assets", "load", "lcp", "ready")

# Installed before the page's own scripts: when the catalogue is drawn, and the LCP.
OBSERVE = """
window.__h2b = {ready: null, lcp: null};
new MutationObserver(() => {
  if (document.body && document.body.dataset.state === 'ready' && window.__h2b.ready === null)
    window.__h2b.ready = performance.now();
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) window.__h2b.lcp = entry.startTime;
}).observe({type: 'largest-contentful-paint', buffered: true});
"""
COLLECT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  // The first fetch of each asset (the icon is asked for again, as the favicon, after load).
  const assets = Object.values(Object.groupBy(
    performance.getEntriesByType('resource')
      .filter(e => new URL(e.name).pathname.startsWith('/static/')),
    e => e.name)).map(fetches => fetches[0]);
  return {
    protocol: nav.nextHopProtocol,
    connect_start: nav.connectStart,
    connected: nav.connectEnd,
    document_first_byte: nav.responseStart,
    document_interim: nav.firstInterimResponseStart || null,
    document_end: nav.responseEnd,
    asset_count: assets.length,
    assets_started: Math.min(...assets.map(e => e.requestStart || e.startTime)),
    assets: Math.max(...assets.map(e => e.responseEnd)),
    load: nav.loadEventEnd,
    lcp: window.__h2b.lcp,
    ready: window.__h2b.ready,
  };
}"""


class Server:
    """One `h2books.bench.thinking` process on a free port, in the root namespace."""

    _PORT = re.compile(r"https://[^:]+:(\d+)/")

    def __init__(self, data_dir: Path, think_ms: float, flags: list[str]) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "h2books.bench.thinking", "--think-ms", f"{think_ms:g}"),
                *("--data-dir", str(data_dir), "--port", "0", *flags),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = 0
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if match := self._PORT.search(line):
                self.port = int(match.group(1))
            if "stop: Ctrl+C" in line:
                break
        if not self.port:
            self.stop()
            raise RuntimeError(f"the server did not start ({' '.join(flags)})")
        # Keep its stderr drained, or a chatty server would block on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def servers(data_dir: Path, thinks: list[float]) -> Iterator[dict[tuple[float, str], Server]]:
    running: dict[tuple[float, str], Server] = {}
    try:
        for think in thinks:
            for variant, flags in VARIANTS.items():
                running[think, variant] = Server(data_dir, think, flags)
        yield running
    finally:
        for server in running.values():
            server.stop()


def trusting_home(data_dir: Path, home: Path) -> None:
    """HOME whose NSS database trusts the local CA (what Chromium reads at start)."""
    subprocess.run(
        [sys.executable, "-m", "h2books", "cert", "--trust", "--data-dir", str(data_dir)],
        env={**os.environ, "HOME": str(home)},
        check=True,
        capture_output=True,
    )


def load_once(browser: Any, port: int) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.add_init_script(OBSERVE)
        page.goto(f"https://localhost:{port}/store", wait_until="load", timeout=60_000)
        page.wait_for_selector("body[data-state=ready]", timeout=60_000)
        page.wait_for_function("window.__h2b.ready !== null && window.__h2b.lcp !== null")
        result: dict[str, Any] = page.evaluate(COLLECT)
    finally:
        context.close()
    if result["asset_count"] != 3 or result["protocol"] != "h2":
        raise RuntimeError(f"unexpected page load: {result}")
    return result


def measure_rtt(
    rtt: float, running: dict[tuple[float, str], Server], home: Path, loads: int
) -> list[dict[str, Any]]:
    """Every load at this RTT: one browser in the link's client namespace, variants in turn."""
    from playwright.sync_api import sync_playwright

    rows = []
    with (
        EmulatedLink(Conditions(rtt=rtt), seed=1) as link,
        link.client_side(),
        sync_playwright() as api,
    ):
        browser = api.chromium.launch(
            executable_path=CHROMIUM,
            args=list(CHROMIUM_FLAGS),
            env={**os.environ, "HOME": str(home)},
        )
        try:
            keys = list(running)
            for key in keys:
                load_once(browser, running[key].port)  # untimed: the first load is slower
            for round_number in range(loads):
                shift = round_number % len(keys)
                for think, variant in keys[shift:] + keys[:shift]:
                    result = load_once(browser, running[think, variant].port)
                    rows.append(
                        {"rtt_ms": rtt * 1000, "think_ms": think, "variant": variant, **result}
                    )
                    print(".", end="", flush=True, file=sys.stderr)
        finally:
            browser.close()
    print(file=sys.stderr)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| RTT | think | variant | " + " | ".join(METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    groups: dict[tuple[float, float, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["rtt_ms"], row["think_ms"], row["variant"]), []).append(row)
    for (rtt, think, variant), group in sorted(
        groups.items(), key=lambda item: (item[0][0], item[0][1], list(VARIANTS).index(item[0][2]))
    ):
        cells = []
        for metric in METRICS:
            values = [row[metric] for row in group if row[metric] is not None]
            cells.append(
                f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"
                if values
                else "-"
            )
        lines.append(f"| {rtt:g} ms | {think:g} ms | {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rtt",
        type=durations,
        default=[0.0, 0.05, 0.1],
        help="round-trip times to sweep (default 0,50,100 ms)",
    )
    parser.add_argument(
        "--think",
        default="0,200",
        help="server think times before /store's 200, in ms (default 0,200)",
    )
    parser.add_argument("--loads", type=int, default=7, help="timed loads per variant")
    parser.add_argument("--json", type=Path, help="write every load here")
    args = parser.parse_args()
    thinks = [float(value) for value in args.think.split(",")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="h2books-hints-") as scratch:
        data_dir, home = Path(scratch) / "data", Path(scratch) / "home"
        home.mkdir()
        rows: list[dict[str, Any]] = []
        with servers(data_dir, thinks) as running:
            trusting_home(data_dir, home)
            for rtt in args.rtt:
                rows += measure_rtt(rtt, running, home, args.loads)
    print(
        f"Chromium {chromium_version()}, {args.loads} loads per variant, "
        f"{time.monotonic() - started:.0f} s; milliseconds from navigation start, "
        "median (min-max)\n"
    )
    print(summary(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def chromium_version() -> str:
    done = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True)
    match = re.search(r"\d+(\.\d+)+", done.stdout)
    return match.group(0) if match else "?"


if __name__ == "__main__":
    main()
