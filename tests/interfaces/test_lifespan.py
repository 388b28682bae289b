"""ASGI lifespan through the real server: startup before the first connection, shutdown
after the last request, `state` shared into request scopes, and the three modes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from h2books.interfaces.asgi import AsgiInterface
from h2books.interfaces.lifespan import LifespanError
from h2books.server.config import ServerConfig
from tests.interfaces.conftest import LogRecords
from tests.threaded_server import ThreadedServer


def asgi(app: Any, **options: Any) -> Callable[[ServerConfig], AsgiInterface]:
    """What ThreadedServer takes: the interface built from the server's config."""
    return lambda config: AsgiInterface(app, config, **options)


def starlette_app(events: list[str], slow_started: threading.Event | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"pool": "the pool"}
        events.append("shutdown")

    async def home(request: Request) -> JSONResponse:
        if request.query_params.get("slow"):
            assert slow_started is not None
            slow_started.set()
            await asyncio.sleep(0.3)
            events.append("slow request done")
        return JSONResponse({"pool": request.state.pool})

    return Starlette(routes=[Route("/", home)], lifespan=lifespan)


def test_starlette_lifespan_state_and_order(tmp_path: Path, protocol: str) -> None:
    events: list[str] = []
    slow_started = threading.Event()
    answers: list[int] = []
    server = ThreadedServer(tmp_path, asgi(starlette_app(events, slow_started)))
    with server:
        assert events == ["startup"]  # before the first connection was accepted
        with server.client(protocol) as c:
            assert c.get("/").json() == {"pool": "the pool"}
        slow_client = server.client("h1")
        slow = threading.Thread(
            target=lambda: answers.append(slow_client.get("/?slow=1").status_code)
        )
        slow.start()
        assert slow_started.wait(10)
    slow.join(10)
    slow_client.close()
    assert answers == [200]
    # Shutdown ran after the in-flight request finished.
    assert events == ["startup", "slow request done", "shutdown"]


async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http", "no lifespan here"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_auto_serves_an_app_without_lifespan(tmp_path: Path, server_logs: LogRecords) -> None:
    interface = asgi(http_only, lifespan="auto")
    with ThreadedServer(tmp_path, interface) as server, server.client("h2") as c:
        assert c.get("/").text == "ok"
    assert any("lifespan unsupported" in r.getMessage() for r in server_logs.records)


def test_on_requires_lifespan(tmp_path: Path) -> None:
    server = ThreadedServer(tmp_path, asgi(http_only, lifespan="on"))
    with pytest.raises(LifespanError, match="does not complete"), server:
        pass


def test_off_never_calls_lifespan(tmp_path: Path) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        await http_only(scope, receive, send)

    interface = asgi(app, lifespan="off")
    with ThreadedServer(tmp_path, interface) as server, server.client("h1") as c:
        assert c.get("/").text == "ok"
    assert seen == ["http"]


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_failed_stops_the_server(tmp_path: Path, mode: str) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    server = ThreadedServer(tmp_path, asgi(app, lifespan=mode))
    with pytest.raises(LifespanError, match="no database"), server:
        pass


def test_shutdown_failure_is_logged(tmp_path: Path, server_logs: LogRecords) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.failed", "message": "pool stuck"})
            return
        await http_only(scope, receive, send)

    with ThreadedServer(tmp_path, asgi(app)):
        pass
    assert any("pool stuck" in m for m in server_logs.messages())
