"""ASGI 3.0 over the protocol-neutral exchange: one adapter for HTTP/1.1, HTTP/2 and later HTTP/3.

    AsgiInterface(app, config, root_path="", lifespan="auto")

For each request the app is called with a scope (`asgi_scope.py`: the constant part built
once per connection), and `receive`/`send` of an `HttpCall` (`asgi_http.py`). The app's
coroutine is stepped inline where the request arrived (`inline.py`): an app that answers
without waiting for I/O costs no task and no trip through the event loop, and its answer
goes out in the same write as the others of that read. Only an app that really waits
becomes a task, bounded by the response timeout until it starts its answer.

A request body small enough to arrive in one go (a declared length up to 64 KiB) is
awaited whole before the app is called, so that the common POST runs inline too; a larger
or unannounced body is handed to the app as it arrives, with the peer's flow-control
credit returned as the app reads it.

Lifespan (`lifespan.py`) runs before the server accepts connections and after the last
one is done; its `state` is copied shallowly into every request's scope.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from types import CoroutineType
from typing import Any

from h2books.interfaces import ServerInterface
from h2books.interfaces.asgi_fields import Heads
from h2books.interfaces.asgi_http import (
    AWAITING_START,
    BODY_UNREAD,
    DONE,
    ClientDisconnected,
    HttpCall,
)
from h2books.interfaces.asgi_scope import (
    METHOD_NAMES,
    AsgiApp,
    ScopeSettings,
    apply_proxy,
    connection_parts,
    request_parts,
)
from h2books.interfaces.asgi_websocket import serve_websocket
from h2books.interfaces.inline import RAISED, RETURNED, InlineRunner
from h2books.interfaces.lifespan import Lifespan
from h2books.interfaces.proxy import TrustedProxies
from h2books.server.config import ServerConfig
from h2books.server.exchange import Exchange
from h2books.server.responses import INTERNAL_ERROR

__all__ = ["AsgiApp", "AsgiInterface", "ClientDisconnected"]

log = logging.getLogger("h2books.asgi")

# Bodies declared up to this size are awaited whole: they come in one read or two.
_WHOLE_BODY_UP_TO = 64 * 1024

# What _scope sets per request, as placeholders in the per-connection template.
_PER_REQUEST_KEYS = dict.fromkeys(
    ("method", "path", "raw_path", "query_string", "headers", "state")
)


class AsgiInterface(ServerInterface):
    """Serves an ASGI 3 application (Starlette, FastAPI, Django's ASGI handler, ...)."""

    __slots__ = (
        "_app",
        "_call_app",
        "_runner",
        "heads",
        "lifespan",
        "max_fields",
        "response_timeout",
        "settings",
        "state",
    )

    def __init__(
        self,
        app: AsgiApp,
        config: ServerConfig | None = None,
        *,
        root_path: str | None = None,
        lifespan: str | None = None,
    ) -> None:
        config = config if config is not None else ServerConfig()
        self.app = app  # and _call_app, what handle calls
        trusted = TrustedProxies(config.forwarded_allow_ips) if config.proxy_headers else None
        self.settings = ScopeSettings(config.root_path if root_path is None else root_path, trusted)
        self.state: dict[str, Any] = {}
        self.lifespan = Lifespan(
            app,
            config.lifespan if lifespan is None else lifespan,
            self.state,
            shutdown_timeout=config.timeouts.graceful_shutdown,
        )
        self.response_timeout = config.timeouts.response
        self.heads: Heads = {}  # the app's checked response heads (interfaces/templates.py)
        self._runner: InlineRunner | None = None

    @property
    def app(self) -> AsgiApp:
        return self._app

    @app.setter
    def app(self, app: AsgiApp) -> None:
        self._app = app
        self._call_app = _direct_call(app)  # app, in one call

    async def startup(self) -> None:
        self._runner = InlineRunner(asyncio.get_running_loop())
        await self.lifespan.startup()

    async def shutdown(self) -> None:
        await self.lifespan.shutdown()

    def handle(self, exchange: Exchange) -> None:
        """Serve one request; also the `on_body_complete` of a small body awaited whole.

        One flat function for the common path (each call here is paid per request): the
        scope (a WebSocket's is reshaped from it), the call, the app stepped inline."""
        # A request over the field-count bound (the "HTTP/2 Bomb") never gets here: the
        # cores answer it with a 431 (H2Config/H1Config max_header_count).
        if (
            not exchange.body_complete
            and exchange.upgrade is None
            and _small_body(exchange.headers)
        ):
            exchange.on_body_complete = self.handle  # called once the last byte is in
            return
        try:
            settings = self.settings
            http_version = exchange.http_version
            cached = exchange.adapter.interface_data
            if cached is None or cached[0] != http_version:
                cached = self._connection_template(exchange)
            scope: dict[str, Any] = cached[1].copy()
            method = exchange.method
            scope["method"] = METHOD_NAMES.get(method) or method.decode("latin-1")
            raw, _, scope["query_string"] = exchange.target.partition(b"?")
            known = settings.paths.get(raw)  # request_parts' cache, looked up inline
            if known is None:
                scope["path"], scope["raw_path"], _ = request_parts(raw, settings)
            else:
                scope["path"], scope["raw_path"] = known
            headers = exchange.headers
            if (
                http_version != "1.1"
                and http_version != "1.0"
                and exchange.authority
                and not (headers and headers[0][0] == b"host")
            ):
                # HTTP/2 and 3 name the authority in :authority, which the spec wants as a
                # leading host field unless a Host field came too (the h2 core checked
                # that they agree). Their adapters hand a Host field that came on first
                # (validation.host_first), and a push's fields have none: one test, no scan.
                headers.insert(0, (b"host", exchange.authority))
            scope["headers"] = headers
            scope["state"] = self.state.copy()
            # Each request's own: a middleware that adds to them must not leak the
            # addition into the connection's later requests (or every connection's).
            scope["asgi"] = scope["asgi"].copy()
            scope["extensions"] = scope["extensions"].copy()
            if cached[2]:
                apply_proxy(scope, headers, settings)
        except Exception:
            log.exception("cannot build the ASGI scope of %r", exchange)
            exchange.respond(INTERNAL_ERROR)
            return
        if exchange.upgrade is not None:
            # A WebSocket handshake (HTTP/1.1 Upgrade or HTTP/2 extended CONNECT): the
            # session runs in a task of its own (interfaces/asgi_websocket.py).
            serve_websocket(self.app, exchange, scope)
            return
        # The call, made here (see HttpCall: no __init__, and no factory function, whose
        # call would cost ~400 instructions per request).
        call = HttpCall()
        call.exchange = exchange
        call.heads = self.heads
        call.phase = AWAITING_START
        call.body_state = BODY_UNREAD
        call.timer = call.waiter = None
        try:
            coro = self._call_app(scope, call.receive, call.send)
            if type(coro) is not CoroutineType:
                coro = _awaited(coro)
        except Exception as exc:
            call.finish(exc)
            return
        runner = self._runner
        if runner is None:  # served without startup() (a test driving adapters directly)
            runner = self._runner = InlineRunner(asyncio.get_running_loop())
        ended = runner.run(coro, call)
        if ended is RETURNED:
            if call.phase != DONE:  # returned before its response was complete
                call.finish(None)
        elif ended is not RAISED:
            call.waiting(ended, self.response_timeout)

    def _connection_template(self, exchange: Exchange) -> tuple[str, dict[str, Any], bool]:
        """The constant part of the scope, kept on the connection (for its HTTP version:
        an HTTP/1.1 connection may have started as HTTP/1.0)."""
        base, behind_proxy = connection_parts(exchange, self.settings)
        # The per-request keys are in the template already: a copy then has room for them,
        # where 8 keys + 6 stores would grow (rehash) every request's dict.
        base.update(_PER_REQUEST_KEYS)
        cached = (exchange.http_version, base, behind_proxy)
        exchange.adapter.interface_data = cached
        return cached


def _direct_call(app: AsgiApp) -> AsgiApp:
    """`app`, or, for an instance of a class whose `__call__` is a Python function (most
    frameworks' apps), that function bound to it: the call `app(...)` makes, since a call
    looks `__call__` up on the type, as here. Calling the instance itself goes through the
    type's generic call slot (an argument tuple, a lookup, the arguments copied again),
    ~700 instructions more per request on CPython 3.11 than the bound method. Bound when
    the app is set: a `__call__` patched onto the class later (instrumentation that wraps
    a framework's class after the server started) is not seen by HTTP requests; patch
    before serving, or set `interface.app` again (for HTTP and WebSocket requests: the
    lifespan keeps the app it was built with)."""
    for klass in type(app).__mro__:
        if "__call__" in klass.__dict__:
            call = klass.__dict__["__call__"]  # not getattr: a staticmethod stays one
            if type(call) is types.FunctionType:
                return types.MethodType(call, app)
            return app
    return app


def _small_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"content-length":
            return int(value) <= _WHOLE_BODY_UP_TO  # the cores have validated it
    return False


async def _awaited(awaitable: Any) -> None:
    """An app whose call returned an awaitable other than a coroutine (a Future, an
    object with __await__): awaited in a coroutine of ours."""
    if not inspect.isawaitable(awaitable):
        raise TypeError(
            f"the ASGI app returned {type(awaitable).__name__}, not an awaitable: is it an "
            "ASGI 3 app (async def app(scope, receive, send))?"
        )
    await awaitable
