"""Raw ASGI apps for the interface's tests: each path exercises one part of the spec."""

from __future__ import annotations

import asyncio
import json
from typing import Any

# What the apps saw, for the tests to read after a request (the apps run in the server thread).
SEEN: dict[str, Any] = {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def read_body(receive: Any) -> tuple[bytes, int]:
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        messages += 1
        if not message.get("more_body", False):
            return body, messages


async def answer(send: Any, body: bytes, status: int = 200, **extra: Any) -> None:
    headers = [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers, **extra})
    await send({"type": "http.response.body", "body": body})


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        scope["state"]["started"] = True
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    handler = ROUTES.get(path.removeprefix(scope["root_path"]))
    if handler is None:
        await answer(send, b"not found", 404)
        return
    await handler(scope, receive, send)


async def scope_route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await read_body(receive)
    shown = {k: v for k, v in scope.items() if k != "state"}
    shown["state"] = dict(scope["state"])
    shown["headers_is_list"] = isinstance(scope["headers"], list)
    body = json.dumps(_jsonable(shown)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [[b"x-list", b"1"]]})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body, messages = await read_body(receive)
    SEEN["echo_messages"] = messages
    await answer(send, body)


async def slow_reader(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the body slowly, noting the most the server ever held unread for it."""
    total, most_held = 0, 0
    while True:
        message = await receive()
        total += len(message.get("body", b""))
        await asyncio.sleep(0.002)
        most_held = max(most_held, SEEN["held"]())
        if not message.get("more_body"):
            break
    SEEN["most_held"] = most_held
    await answer(send, str(total).encode())


CHUNK = b"s" * 65536
CHUNKS = 64


async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    SEEN["stream_sent"] = 0
    for _ in range(CHUNKS):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        SEEN["stream_sent"] += 1
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def trailers(scope: dict[str, Any], receive: Any, send: Any) -> None:
    SEEN["trailers_extension"] = "http.response.trailers" in scope["extensions"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"trailer", b"grpc-status")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"payload"})
    await send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})


async def early_hint(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]}
    )
    await answer(send, b"hinted")


async def pathsend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.pathsend", "path": SEEN["file"]})


async def raise_before(scope: dict[str, Any], receive: Any, send: Any) -> None:
    raise ValueError("broken before the response")


async def raise_after(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    await asyncio.sleep(0)
    raise ValueError("broken during the body")


async def invalid_message(scope: dict[str, Any], receive: Any, send: Any) -> None:
    try:
        await send({"type": "http.response.body", "body": b"no head"})
    except RuntimeError as exc:
        SEEN["invalid"] = str(exc)
    await answer(send, b"recovered")


async def send_after_complete(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await answer(send, b"done")
    try:
        await send({"type": "http.response.body", "body": b"more"})
    except RuntimeError as exc:
        SEEN["after_complete"] = str(exc)


async def no_response(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await read_body(receive)


async def never(scope: dict[str, Any], receive: Any, send: Any) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        SEEN["never_cancelled"] = True
        raise


async def wait_disconnect(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await read_body(receive)
    SEEN["disconnect_waiting"].set()
    message = await receive()
    SEEN["disconnect"] = message
    try:
        await answer(send, b"too late")
    except OSError as exc:
        SEEN["send_after_disconnect"] = type(exc).__name__
    SEEN["disconnect_done"].set()


async def bad_header(scope: dict[str, Any], receive: Any, send: Any) -> None:
    try:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x", b"a\r\nb: c")]}
        )
    except RuntimeError as exc:
        SEEN["bad_header"] = str(exc)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"Connection", b"keep-alive"), (b"transfer-encoding", b"chunked")],
        }
    )
    await send({"type": "http.response.body", "body": b"clean"})


async def wrong_length(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    )
    await send({"type": "http.response.body", "body": b"short"})


async def meddling_middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Writes into the scope's nested dicts, as a careless middleware might."""
    scope["extensions"]["x-meddled"] = {}
    scope["asgi"]["x-meddled"] = True
    await scope_route(scope, receive, send)


ROUTES = {
    "/scope": scope_route,
    "/meddle": meddling_middleware,
    "/a/b": scope_route,
    "/echo": echo,
    "/slow-reader": slow_reader,
    "/stream": stream,
    "/trailers": trailers,
    "/early-hint": early_hint,
    "/pathsend": pathsend,
    "/raise-before": raise_before,
    "/raise-after": raise_after,
    "/invalid": invalid_message,
    "/after-complete": send_after_complete,
    "/no-response": no_response,
    "/never": never,
    "/wait-disconnect": wait_disconnect,
    "/bad-header": bad_header,
    "/wrong-length": wrong_length,
}
