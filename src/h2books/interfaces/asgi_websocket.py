"""The ASGI `websocket` scope over `server.websocket.WebSocket`: HTTP/1.1 and HTTP/2 alike.

`serve_websocket(app, exchange, scope)` runs one app call for a WebSocket request
(`exchange.upgrade == b"websocket"`). `scope` is the HTTP-like base the ASGI HTTP
interface builds for the request; the keys used from it are `asgi`, `http_version`,
`scheme` ("http"/"https", turned into "ws"/"wss"), `path`, `raw_path`,
`query_string`, `root_path`, `headers`, `client`, `server`, `state` and
`extensions` (whatever else it holds is passed on, `method` excepted).

The messages (ASGI WebSocket spec 2.4):

- receive: `websocket.connect` first; then `websocket.receive` (`bytes` or `text`)
  once accepted; `websocket.disconnect` (`code`, `reason`) once closed by either side.
- send: `websocket.accept` (`subprotocol`, `headers`), `websocket.send` (`bytes` or
  `text`), `websocket.close` (`code`, `reason`); before accepting, a close refuses the
  handshake with 403, and `websocket.http.response.start` / `.body` (the denial
  response extension) send an HTTP response of the app's own instead.

Misbehaving apps: a request without the right fields gets 400 and the app is never
called; an app that raises, or returns without answering, gets a 500 before
accepting and a 1011 close after (a normal return after accepting closes with 1000);
an invalid message raises in the app and is logged. Sending on a closed socket raises
`ClientDisconnected` (an OSError, as the spec asks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

from h2books.http import Response
from h2books.interfaces.asgi_scope import AsgiApp
from h2books.server.exchange import PENDING, STARTED, Exchange
from h2books.server.responses import INTERNAL_ERROR, error_response
from h2books.server.websocket import (
    INTERNAL_ERROR as CLOSE_INTERNAL_ERROR,
)
from h2books.server.websocket import (
    NORMAL,
    ClientDisconnected,
    Closed,
    HandshakeError,
    WebSocket,
    read_handshake,
)

log = logging.getLogger("h2books.asgi")

Scope = dict[str, Any]
Message = MutableMapping[str, Any]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
FORBIDDEN = error_response(403, "forbidden")
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
# WebSocket tasks are referenced here until done: the loop keeps only weak references.
_running: set[asyncio.Task[None]] = set()


class _NoChunks:
    """The `stream` of a response whose body the app sends itself, in parts."""

    def __aiter__(self) -> _NoChunks:
        return self

    async def __anext__(self) -> bytes:
        raise StopAsyncIteration


_SENT_IN_PARTS = _NoChunks()


class InvalidMessage(RuntimeError):
    """The app sent a message that is unknown or not allowed now."""


def websocket_scope(base: Scope, subprotocols: list[str]) -> dict[str, Any]:
    """The `websocket` scope from the HTTP-like base scope of the request."""
    scope = dict(base)
    scope.pop("method", None)
    scope["type"] = "websocket"
    scope["asgi"] = ASGI_VERSION
    scope["scheme"] = _WS_SCHEMES.get(str(base.get("scheme", "http")), "ws")
    scope["subprotocols"] = subprotocols
    extensions = dict(base.get("extensions") or {})
    extensions["websocket.http.response"] = {}
    scope["extensions"] = extensions
    return scope


def serve_websocket(app: AsgiApp, exchange: Exchange, scope: Scope) -> None:
    """Answer a WebSocket request with `app` (in a task of its own)."""
    try:
        handshake = read_handshake(exchange)
    except HandshakeError as exc:
        exchange.respond(error_response(400, str(exc)))
        return
    config = exchange.adapter.state.config
    session = WebSocket(exchange, handshake, config)
    call = ASGIWebSocket(app, session, websocket_scope(scope, handshake.subprotocols))
    task = exchange.adapter.state.loop.create_task(call.run())
    _running.add(task)
    task.add_done_callback(_running.discard)


class ASGIWebSocket:
    """One app call for one WebSocket: its `receive` and `send`, and its ending."""

    __slots__ = ("_connect_sent", "_denial", "app", "scope", "session")

    def __init__(self, app: AsgiApp, session: WebSocket, scope: Scope) -> None:
        self.app = app
        self.session = session
        self.scope = scope
        self._connect_sent = False
        self._denial: Response | None = None  # a denial response whose body is coming

    async def run(self) -> None:
        session = self.session
        exchange = session.exchange
        try:
            await self.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            session.close(CLOSE_INTERNAL_ERROR)
            raise
        except Exception as exc:
            if isinstance(exc, ClientDisconnected) and session.closed is not None:
                log.debug("WebSocket app stopped on a closed socket: %r", exchange)
            else:
                log.exception("WebSocket app failed for %r", exchange)
            self._end(failed=True)
            return
        self._end(failed=False)

    def _end(self, failed: bool) -> None:
        session = self.session
        exchange = session.exchange
        if exchange.response_state == PENDING:
            # Neither accepted nor refused: a 500, as for an HTTP request.
            if not failed:
                log.error("WebSocket app returned without accepting or closing: %r", exchange)
            exchange.respond(INTERNAL_ERROR)
        elif self._denial is not None:
            if exchange.response_state == STARTED:
                exchange.reset()  # a denial response left unfinished
        elif session.closed is None:
            session.close(CLOSE_INTERNAL_ERROR if failed else NORMAL)

    async def receive(self) -> Message:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        session = self.session
        if session.exchange.response_state == PENDING:
            # The peer sends nothing before it is accepted: waiting would never end.
            raise InvalidMessage("websocket.receive before websocket.accept or close")
        message = await session.receive()
        if isinstance(message, Closed):
            return {"type": "websocket.disconnect", "code": message.code, "reason": message.reason}
        if isinstance(message, str):
            return {"type": "websocket.receive", "text": message}
        return {"type": "websocket.receive", "bytes": message}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        session = self.session
        exchange = session.exchange
        if kind == "websocket.send":
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if not isinstance(data, str):
                    raise InvalidMessage("websocket.send needs bytes or text")
            await session.send(data)
        elif kind == "websocket.accept":
            if exchange.response_state != PENDING:
                raise InvalidMessage("websocket.accept after the handshake was answered")
            subprotocol = message.get("subprotocol")
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers") or ()]
            session.accept(subprotocol, headers)
        elif kind == "websocket.close":
            if exchange.response_state == PENDING:
                exchange.respond(FORBIDDEN)  # refused before accepting
                session.closed = Closed(message.get("code") or NORMAL)
            elif self._denial is None:
                session.close(int(message.get("code") or NORMAL), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            if exchange.response_state != PENDING:
                raise InvalidMessage("a denial response after the handshake was answered")
            headers = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers") or ()]
            # A stream marks the body as sent in parts: no content-length is added.
            self._denial = Response(int(message["status"]), headers, stream=_SENT_IN_PARTS)
            exchange.start(self._denial)
        elif kind == "websocket.http.response.body":
            if self._denial is None or exchange.response_state != STARTED:
                raise InvalidMessage("websocket.http.response.body without its start")
            body = bytes(message.get("body") or b"")
            if body and await exchange.wait_writable():
                exchange.write(body)
            if not message.get("more_body"):
                exchange.end()
                session.closed = Closed(1006)
        else:
            raise InvalidMessage(f"unknown or misplaced WebSocket message {kind!r}")
