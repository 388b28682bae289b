"""103 Early Hints on and off (`serve --no-early-hints`): the same app, with and without them,
seen by curl, by our client and by an ASGI app."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from h2books.client import Client
from h2books.interfaces.asgi import AsgiInterface
from h2books.server.config import ServerConfig
from tests.conftest import ServerProcess, require_tool
from tests.interfaces.asgi_apps import raw_app
from tests.threaded_server import ThreadedServer


@pytest.fixture(scope="module")
def quiet_server(server: ServerProcess) -> Iterator[ServerProcess]:
    """`serve --no-early-hints` over the shared server's catalogue."""
    process = ServerProcess(server.data_dir, "--no-early-hints", "--no-access-log").start()
    yield process
    process.stop()


def curl_store(server: ServerProcess, version: str) -> str:
    done = subprocess.run(
        [require_tool("curl"), "-sv", version, "--cacert", str(server.ca), f"{server.url}/store"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "<!doctype html>" in done.stdout.lower()
    return done.stderr


@pytest.mark.parametrize("version", ["--http2", "--http1.1"])
def test_curl_sees_the_103_by_default_and_none_with_no_early_hints(
    server: ServerProcess, quiet_server: ServerProcess, version: str
) -> None:
    hinted = curl_store(server, version)
    assert re.search(r"< HTTP/(2|1\.1) 103", hinted)
    assert len(re.findall(r"< link: <[^>]+>; rel=preload", hinted)) == 3
    plain = curl_store(quiet_server, version)
    assert re.search(r"< HTTP/(2|1\.1) 200", plain)
    assert " 103" not in plain and "rel=preload" not in plain


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "h1"])
def test_our_client_gets_the_same_page_without_the_103(
    server: ServerProcess, quiet_server: ServerProcess, http2: bool
) -> None:
    async def fetch(target: ServerProcess) -> Any:
        async with Client(target.url, cacert=target.ca, http2=http2) as client:
            return await client.get("/store")

    hinted, plain = asyncio.run(fetch(server)), asyncio.run(fetch(quiet_server))
    assert [status for status, _ in hinted.informational] == [103]
    assert plain.informational == []
    assert plain.status == hinted.status == 200 and plain.content == hinted.content


def test_the_banner_says_early_hints_are_off(quiet_server: ServerProcess) -> None:
    assert any("early hints: off" in line for line in quiet_server.stderr_lines)


@pytest.mark.parametrize("early_hints", [True, False], ids=["on", "off"])
def test_asgi_is_offered_the_extension_only_when_hints_go_out(
    tmp_path: Path, early_hints: bool
) -> None:
    def make(config: ServerConfig) -> AsgiInterface:
        return AsgiInterface(raw_app, config)

    async def fetch(running: ThreadedServer) -> tuple[Any, Any]:
        async with Client(running.url, cacert=running.ca) as client:
            return await client.get("/scope"), await client.get("/early-hint")

    with ThreadedServer(tmp_path, make, early_hints=early_hints) as running:
        scope, answer = asyncio.run(fetch(running))
    assert ("http.response.early_hint" in scope.json()["extensions"]) is early_hints
    # The app sends its hint whatever it was offered: the server drops it when off.
    assert answer.status == 200 and answer.text == "hinted"
    assert [status for status, _ in answer.informational] == ([103] if early_hints else [])
