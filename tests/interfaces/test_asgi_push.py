"""ASGI server push: `http.response.push` is offered only where a push can go out, and
drives it (a raw ASGI app and Starlette's `Request.send_push_promise`), received by our
client over real TLS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from h2books.client import Client
from h2books.interfaces import ServerInterface
from h2books.interfaces.asgi import AsgiInterface
from h2books.server.config import ServerConfig
from tests.threaded_server import ThreadedServer

PUSH = "http.response.push"


async def raw_pusher(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/` pushes /style.css (with a header of its own) and says whether it could."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/style.css":
        accept = dict(scope["headers"]).get(b"accept", b"").decode()
        body = f"css for {accept or 'anyone'}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    offered = PUSH in scope["extensions"]
    if offered:
        await send({"type": PUSH, "path": "/style.css", "headers": [(b"accept", b"text/css")]})
    body = json.dumps({"offered": offered}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def starlette_page(request: Request) -> PlainTextResponse:
    await request.send_push_promise("/asset.js")
    return PlainTextResponse("page")


async def starlette_asset(request: Request) -> PlainTextResponse:
    return PlainTextResponse("console.log('pushed')")


starlette_app = Starlette(
    routes=[Route("/page", starlette_page), Route("/asset.js", starlette_asset)]
)


def asgi(app: Any) -> Callable[[ServerConfig], ServerInterface]:
    return lambda config: AsgiInterface(app, config)


async def fetch_with_push(
    served: ThreadedServer, first: str, then: str, http2: bool = True
) -> tuple[Any, Any, Client]:
    async with Client(served.url, cacert=served.ca, push=True, http2=http2) as client:
        page = await client.get(first)
        pushed = await client.get(then)
        return page, pushed, client


@pytest.mark.parametrize("push_on", [True, False], ids=["push", "no-push"])
def test_raw_app_pushes_only_where_the_extension_is_offered(tmp_path: Path, push_on: bool) -> None:
    with ThreadedServer(tmp_path, asgi(raw_pusher), push=push_on) as served:
        page, asset, client = asyncio.run(fetch_with_push(served, "/", "/style.css"))
    assert page.json() == {"offered": push_on}
    assert asset.text == ("css for text/css" if push_on else "css for anyone")
    assert asset.pushed is push_on
    assert (client.pushes_received, client.pushes_taken) == ((1, 1) if push_on else (0, 0))


def test_no_push_extension_over_http1(tmp_path: Path) -> None:
    with ThreadedServer(tmp_path, asgi(raw_pusher), push=True) as served:
        page, asset, _ = asyncio.run(fetch_with_push(served, "/", "/style.css", http2=False))
    assert page.json() == {"offered": False}
    assert not asset.pushed


def test_no_push_extension_for_a_client_that_disabled_push(tmp_path: Path) -> None:
    async def fetch(served: ThreadedServer) -> Any:
        async with Client(served.url, cacert=served.ca) as client:  # ENABLE_PUSH=0
            return await client.get("/")

    with ThreadedServer(tmp_path, asgi(raw_pusher), push=True) as served:
        assert asyncio.run(fetch(served)).json() == {"offered": False}


def test_starlette_send_push_promise(tmp_path: Path) -> None:
    with ThreadedServer(tmp_path, asgi(starlette_app), push=True) as served:
        page, asset, client = asyncio.run(fetch_with_push(served, "/page", "/asset.js"))
    assert page.text == "page"
    assert asset.pushed and asset.text == "console.log('pushed')"
    assert asset.status == 200 and client.pushes_taken == 1
