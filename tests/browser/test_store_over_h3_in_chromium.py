"""The storefront in headless Chromium over HTTP/3 (QUIC), trusting our CA through `cert --trust`.

Headless Chromium does not act on Alt-Svc for a first navigation, so the origin is forced
onto QUIC with --origin-to-force-quic-on (the issue allows it); the Alt-Svc header the
TCP side sends is checked by tests/server/adapters/test_h3.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.bench.chromium import CHROMIUM, CHROMIUM_FLAGS
from tests.browser.conftest import run_h2books
from tests.conftest import ServerProcess
from tests.server.h3_support import wait_udp_listening

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def h3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("browser-h3"), "--http3").start()
    wait_udp_listening(process.port)
    yield process
    process.stop()


def test_store_loads_over_h3(playwright_api: Any, h3_server: ServerProcess, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    run_h2books("cert", "--trust", "--data-dir", str(h3_server.data_dir), home=home)
    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--disable-quic"]
    flags += [
        "--enable-quic",
        f"--origin-to-force-quic-on=localhost:{h3_server.port}",
        # Chromium tries QUIC on the first address of localhost, ::1, where nothing
        # listens (the server binds 127.0.0.1); TCP would fall back, QUIC does not.
        "--host-resolver-rules=MAP localhost 127.0.0.1",
    ]
    context = playwright_api.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=CHROMIUM,
        args=flags,
        env={**os.environ, "HOME": str(home)},
        ignore_https_errors=False,
    )
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        response = page.goto(f"{h3_server.url}/store")
        assert response is not None and response.status == 200
        page.wait_for_selector("body[data-state=ready]", timeout=30_000)
        protocol = page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
        hops = page.evaluate("performance.getEntriesByType('resource').map(e => e.nextHopProtocol)")
        books = page.locator("#books > li").count()
    finally:
        context.close()
    assert protocol == "h3"
    assert hops and set(hops) == {"h3"}
    assert books == 3000
    assert not errors
    # The server saw them as HTTP/3 too (its access log).
    assert any('"GET /store HTTP/3"' in line for line in h3_server.stdout_lines)
