"""Chromium opens a WebSocket from a page served over HTTP/2: RFC 8441, on the page's own
connection, to an ASGI echo app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import BrowserFactory, run_h2books
from tests.server.websocket_support import ASGIWebSocketInterface
from tests.threaded_server import ThreadedServer

pytestmark = pytest.mark.slow

PAGE = b"""<!doctype html><meta charset="utf-8"><title>ws</title><pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const ws = new WebSocket(`wss://${location.host}/echo`);
ws.onopen = () => { log("open"); ws.send("hello from chromium"); };
ws.onmessage = (event) => { log("echo: " + event.data); ws.close(1000, "done"); };
ws.onclose = (event) => log("closed " + event.code);
ws.onerror = () => log("error");
</script>
"""

# The HTTP version each WebSocket request came over, as the server saw it.
versions: list[str] = []


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    versions.append(scope["http_version"])
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text")})


async def page_and_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The page over HTTP, the echo over its WebSocket."""
    if scope["type"] == "http":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": PAGE})
    else:
        await echo(scope, receive, send)


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(
        tmp_path_factory.mktemp("ws-browser"), ASGIWebSocketInterface(page_and_echo)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def trusting(page_server: ThreadedServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home-ws")
    data_dir = page_server.config.data_dir
    done = run_h2books("cert", "--trust", "--data-dir", str(data_dir), home=home)
    assert "trusted: h2books local CA" in done.stdout
    return home


def test_chromium_websocket_over_h2(
    launch_browser: BrowserFactory, page_server: ThreadedServer, trusting: Path
) -> None:
    versions.clear()
    page = launch_browser(trusting).new_page()
    response = page.goto(f"https://localhost:{page_server.tls_port}/")
    assert response is not None and response.ok
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('closed')", timeout=15000
    )
    log = page.inner_text("#log")
    assert "echo: hello from chromium" in log
    assert "closed 1000" in log
    assert versions == ["2"]  # RFC 8441 on the page's HTTP/2 connection
