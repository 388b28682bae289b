"""Chromium acts on the storefront's 103 Early Hints: over an emulated link, with the server
thinking before its 200 (`h2books.bench.thinking`), the assets the 103 names are fetched
before the page itself has been answered; with `--no-early-hints`, only after."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink
from tests.browser.conftest import require_browser_tooling
from tests.conftest import ServerProcess
from tests.netem.conftest import require_namespaces

pytestmark = pytest.mark.slow  # two servers, a link, a browser: ~8 s

THINK_MS = 400
RTT = 0.02


def thinking_server(data_dir: Path, *flags: str) -> ServerProcess:
    process = ServerProcess(data_dir)
    process.args = [
        sys.executable,
        "-m",
        "h2books.bench.thinking",
        "--think-ms",
        str(THINK_MS),
        "--port",
        "0",
        "--data-dir",
        str(data_dir),
        "--access-log",
        *flags,
    ]
    return process.start()


@pytest.fixture(scope="module")
def servers(store_server: ServerProcess) -> Iterator[dict[str, ServerProcess]]:
    """With and without Early Hints, over the browser tests' catalogue and CA."""
    hinted = thinking_server(store_server.data_dir)
    try:
        plain = thinking_server(store_server.data_dir, "--no-early-hints")
    except BaseException:
        hinted.stop()
        raise
    yield {"hints": hinted, "no-hints": plain}
    plain.stop()
    hinted.stop()


def load(browser: Any, server: ServerProcess) -> dict[str, Any]:
    """The page in a fresh context (empty cache); its navigation timing."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{server.url}/store", wait_until="load", timeout=30_000)
        timing: dict[str, Any] = page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              return {interim: nav.firstInterimResponseStart || 0,
                      first_byte: nav.responseStart, end: nav.responseEnd,
                      protocol: nav.nextHopProtocol};
            }"""
        )
    finally:
        context.close()
    return timing


def requests_before_the_page(server: ServerProcess) -> list[str]:
    """The asset requests the access log shows before the /store response."""
    # The log line was written before the browser had the page; its reader thread may
    # still be handing it over.
    deadline = time.monotonic() + 5
    while not any("GET /store " in line for line in server.stdout_lines):
        assert time.monotonic() < deadline, "no /store line in the access log"
        time.sleep(0.01)
    lines = [line for line in server.stdout_lines if "GET /" in line]
    store = next(i for i, line in enumerate(lines) if "GET /store " in line)
    return [line.split("GET ")[1].split()[0] for line in lines[:store] if "/static/" in line]


def test_chromium_fetches_the_hinted_assets_while_the_server_thinks(
    servers: dict[str, ServerProcess], trusting_home: Path
) -> None:
    require_browser_tooling()
    require_namespaces()
    # Playwright of our own (not the `playwright_api` fixture's): its driver, and so
    # Chromium, must start inside the link's client namespace.
    from playwright.sync_api import sync_playwright

    with (
        EmulatedLink(Conditions(rtt=RTT), seed=1) as link,
        link.client_side(),
        sync_playwright() as api,
    ):
        browser = api.chromium.launch(
            executable_path=CHROMIUM,
            args=list(CHROMIUM_FLAGS),
            env={**os.environ, "HOME": str(trusting_home)},
        )
        try:
            timings = {name: load(browser, server) for name, server in servers.items()}
        finally:
            browser.close()

    hinted, plain = timings["hints"], timings["no-hints"]
    assert hinted["protocol"] == plain["protocol"] == "h2"
    # Chromium saw the 103 (its first byte), well before the page's end...
    assert 0 < hinted["interim"] <= hinted["first_byte"]
    assert hinted["end"] - hinted["interim"] >= THINK_MS * 0.9
    # ...and asked for every asset it named while the server was still thinking.
    assert len(set(requests_before_the_page(servers["hints"]))) == 3
    # Without the 103: nothing before the page, whose first byte comes after the think.
    assert plain["interim"] == 0
    assert plain["first_byte"] >= THINK_MS
    assert requests_before_the_page(servers["no-hints"]) == []
