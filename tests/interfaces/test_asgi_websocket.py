"""The ASGI `websocket` scope through the real server, over HTTP/1.1 (the `websockets`
client) and HTTP/2 (an RFC 8441 client): raw ASGI apps, then Starlette and FastAPI."""

from __future__ import annotations

import asyncio
import contextvars
import queue
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi import WebSocket as FastAPIWebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from wsproto.events import CloseConnection, TextMessage

from h2books.interfaces.asgi_websocket import websocket_scope
from tests.server.websocket_support import (
    ASGIWebSocketInterface,
    H2WebSocketClient,
)
from tests.threaded_server import ThreadedServer

Scope = dict[str, Any]

# What the apps saw, for the test thread to check.
seen: queue.Queue[Any] = queue.Queue()


async def raw_app(scope: Scope, receive: Any, send: Any) -> None:
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/refuse":
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"who are you?"})
        return
    if path == "/raise-before":
        raise RuntimeError("app bug before accepting")
    if path == "/return-before":
        return
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": scope["subprotocols"][0] if scope["subprotocols"] else None,
            "headers": [(b"x-app", b"yes")],
        }
    )
    if path == "/scope":
        await send({"type": "websocket.send", "text": repr(_public(scope))})
    if path == "/raise-after":
        raise RuntimeError("app bug after accepting")
    if path == "/return-after":
        return
    if path == "/steps":
        await steps_app(receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            if path == "/record":
                seen.put(("disconnect", message["code"], message.get("reason")))
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked"})
            continue
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


app_context: contextvars.ContextVar[str] = contextvars.ContextVar("app_context", default="unset")


async def steps_app(receive: Any, send: Any) -> None:
    """Says, for each message, whether the app was resumed as the same task and with its
    own context (what a faster way of resuming it must keep); "wait" awaits something
    else first, "raise" raises after a message."""
    app_context.set("mine")
    task = asyncio.current_task()
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message["text"]
        if text == "raise":
            raise RuntimeError("app bug after a message")
        if text == "wait":
            await asyncio.sleep(0)  # a wait of its own between two receives
        same = asyncio.current_task() is task
        answer = f"{text} same_task={same} context={app_context.get()}"
        await send({"type": "websocket.send", "text": answer})


def _public(scope: Scope) -> dict[str, Any]:
    keys = ("type", "http_version", "scheme", "path", "raw_path", "query_string", "root_path")
    out = {key: scope[key] for key in keys}
    out["subprotocols"] = scope["subprotocols"]
    out["extensions"] = sorted(scope["extensions"])
    out["asgi"] = scope["asgi"]
    out["has_headers"] = any(name == b"sec-websocket-version" for name, _ in scope["headers"])
    out["no_method"] = "method" not in scope
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(
        tmp_path_factory.mktemp("asgi-ws"), ASGIWebSocketInterface(raw_app)
    ) as threaded:
        yield threaded


def _h1(server: ThreadedServer, path: str, tls: bool = True, **kwargs: Any) -> Any:
    if tls:
        return connect(
            server.wss + path, ssl=server.threaded_client_context(), open_timeout=10, **kwargs
        )
    return connect(server.ws + path, open_timeout=10, **kwargs)


@pytest.mark.parametrize("tls", [True, False])
def test_echo_and_scope_over_h1(server: ThreadedServer, tls: bool) -> None:
    with _h1(server, "/scope?x=%2F", tls, subprotocols=["one", "two"]) as ws:
        assert ws.subprotocol == "one"
        assert ws.response.headers["x-app"] == "yes"
        scope = eval(ws.recv(timeout=5))  # the repr of plain data
        assert scope["type"] == "websocket"
        assert scope["http_version"] == "1.1"
        assert scope["scheme"] == ("wss" if tls else "ws")
        assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
            "/scope",
            b"/scope",
            b"x=%2F",
        )
        assert scope["subprotocols"] == ["one", "two"]
        assert "websocket.http.response" in scope["extensions"]
        assert scope["asgi"]["version"] == "3.0"
        assert scope["has_headers"] and scope["no_method"]
        ws.send("text")
        assert ws.recv(timeout=5) == "text"
        ws.send(b"bin")
        assert ws.recv(timeout=5) == b"bin"


def test_echo_and_scope_over_h2(server: ThreadedServer) -> None:
    client = H2WebSocketClient(server, path="/scope")
    try:
        assert client.status == 200 and client.headers[b"x-app"] == b"yes"
        event = client.next_event()
        assert isinstance(event, TextMessage)
        scope = eval(event.data)
        assert (scope["http_version"], scope["scheme"]) == ("2", "wss")
        client.send(TextMessage("h2 text"))
        assert client.next_event() == TextMessage("h2 text")
    finally:
        client.close()


def test_disconnect_carries_the_peers_code(server: ThreadedServer) -> None:
    with _h1(server, "/record", tls=False) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
        ws.close(4001, "leaving")
    assert seen.get(timeout=5) == ("disconnect", 4001, "leaving")


def test_app_close_reaches_the_client(server: ThreadedServer) -> None:
    with _h1(server, "/echo") as ws:
        ws.send("close please")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "asked")


@pytest.mark.parametrize(
    ("path", "status"),
    [("/refuse", 403), ("/deny", 401), ("/raise-before", 500), ("/return-before", 500)],
)
def test_handshake_refusals_over_h1(server: ThreadedServer, path: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _h1(server, path)
    response = refused.value.response
    assert response.status_code == status
    if path == "/deny":
        assert response.body == b"who are you?"


@pytest.mark.parametrize(
    ("path", "status"), [("/refuse", 403), ("/deny", 401), ("/raise-before", 500)]
)
def test_handshake_refusals_over_h2(server: ThreadedServer, path: str, status: int) -> None:
    client = H2WebSocketClient(server, path=path)
    try:
        assert client.status == status
        client.wait_ended()
        if path == "/deny":
            assert client.body == b"who are you?"
    finally:
        client.close()


@pytest.mark.parametrize(("path", "code"), [("/raise-after", 1011), ("/return-after", 1000)])
def test_app_ending_after_accepting(server: ThreadedServer, path: str, code: int) -> None:
    with _h1(server, path) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    client = H2WebSocketClient(server, path=path)
    try:
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == code
    finally:
        client.close()


def test_handshake_errors_never_reach_the_app(server: ThreadedServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        _h1(server, "/echo", additional_headers={"Sec-WebSocket-Version": "7"})
    assert refused.value.response.status_code == 400


STEPS = [
    ("a", "a same_task=True context=mine"),
    ("wait", "wait same_task=True context=mine"),
    ("b", "b same_task=True context=mine"),
]


@pytest.mark.parametrize("tls", [True, False])
def test_the_app_keeps_its_task_and_context_across_messages_over_h1(
    server: ThreadedServer, tls: bool
) -> None:
    with _h1(server, "/steps", tls) as ws:
        for sent, answer in STEPS:
            ws.send(sent)
            assert ws.recv(timeout=5) == answer
        ws.send("raise")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_the_app_keeps_its_task_and_context_across_messages_over_h2(
    server: ThreadedServer,
) -> None:
    client = H2WebSocketClient(server, path="/steps")
    try:
        for sent, answer in STEPS:
            client.send(TextMessage(sent))
            assert client.next_event() == TextMessage(answer)
        client.send(TextMessage("raise"))
        event = client.next_event()
        assert isinstance(event, CloseConnection) and event.code == 1011
    finally:
        client.close()


def test_websocket_scope_from_the_http_base() -> None:
    base = {"type": "http", "method": "GET", "scheme": "https", "path": "/a", "extensions": {}}
    scope = websocket_scope(base, ["chat"])
    assert scope["type"] == "websocket" and "method" not in scope
    assert scope["scheme"] == "wss" and scope["subprotocols"] == ["chat"]
    assert "websocket.http.response" in scope["extensions"]
    assert base["type"] == "http"  # the base is not changed


# -- frameworks ------------------------------------------------------------------


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"starlette: {text}")
    except WebSocketDisconnect:
        pass


fastapi_app = FastAPI()


@fastapi_app.websocket("/fast/{room}")
async def fastapi_echo(websocket: FastAPIWebSocket, room: str) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"{room}: {text}")


@pytest.fixture(scope="module")
def framework_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    app = Starlette(routes=[WebSocketRoute("/star", starlette_echo)])
    app.mount("/api", fastapi_app)
    with ThreadedServer(
        tmp_path_factory.mktemp("frameworks"), ASGIWebSocketInterface(app)
    ) as threaded:
        yield threaded


def test_starlette_echo_over_h1_and_h2(framework_server: ThreadedServer) -> None:
    with _h1(framework_server, "/star") as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "starlette: hello"
    client = H2WebSocketClient(framework_server, path="/star")
    try:
        assert client.status == 200
        client.send(TextMessage("hello"))
        assert client.next_event() == TextMessage("starlette: hello")
    finally:
        client.close()


def test_fastapi_echo_over_h1_and_h2(framework_server: ThreadedServer) -> None:
    with _h1(framework_server, "/api/fast/lobby", tls=False) as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "lobby: hi"
    client = H2WebSocketClient(framework_server, path="/api/fast/kitchen")
    try:
        client.send(TextMessage("hi"))
        assert client.next_event() == TextMessage("kitchen: hi")
    finally:
        client.close()
