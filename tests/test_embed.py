"""`await h2books.serve(app, ...)` inside the caller's own event loop, over real TLS."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

import h2books
from h2books.server.config import ServerConfig


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["root_path"].encode()})


async def _serve_and_get(caplog: pytest.LogCaptureFixture, ca_dir: Path, **serve: Any) -> str:
    """Serve `hello` with h2books.serve(**serve), GET / over HTTP/2, then cancel it."""
    caplog.set_level(logging.INFO, logger="h2books.server")
    task = asyncio.create_task(h2books.serve(hello, **serve))
    port = 0
    while not port:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
        found = re.search(r"on https://[^:]+:(\d+)/", caplog.text)
        port = int(found.group(1)) if found else 0
    try:
        async with httpx.AsyncClient(
            http2=True, verify=ssl.create_default_context(cafile=ca_dir / "tls" / "ca.pem")
        ) as client:
            response = await client.get(f"https://localhost:{port}/")
        assert response.http_version == "HTTP/2"
        return response.text
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_serve_takes_the_options_run_takes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # h2books.serve's signature offers **options, as h2books.run takes them.
    body = asyncio.run(
        _serve_and_get(
            caplog, tmp_path, port=0, data_dir=tmp_path, root_path="/api", access_log=False
        )
    )
    assert body == "/api"


def test_serve_takes_a_config(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(port=0, data_dir=tmp_path, root_path="/v1", access_log=False)
    assert asyncio.run(_serve_and_get(caplog, tmp_path, config=config)) == "/v1"


def test_serve_refuses_a_config_and_options_together() -> None:
    with pytest.raises(TypeError, match="not both"):
        asyncio.run(h2books.serve(hello, ServerConfig(), port=0))


def test_serve_refuses_an_unknown_option() -> None:
    with pytest.raises(TypeError, match="unknown option"):
        asyncio.run(h2books.serve(hello, prot=8443))
