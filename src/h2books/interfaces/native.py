"""The native handler API over the protocol-neutral exchange: `Request -> Response`.

A sync handler runs inline in the read that completed its request and its `Response` goes
straight to the adapter: no task, no extra loop iteration. An async handler becomes a
task that answers when it is done. A request whose body is still arriving is dispatched
when its last byte does (`Request.body` is whole).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from collections.abc import Awaitable

from h2books.http import Handler, Hints, Request, Response
from h2books.interfaces import ServerInterface
from h2books.server.exchange import Exchange
from h2books.server.responses import INTERNAL_ERROR

log = logging.getLogger("h2books.server")

# Method names as handlers see them, without a decode per request.
_METHOD_NAMES = {
    name.encode("ascii"): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}


class NativeInterface(ServerInterface):
    """Calls a native handler for each exchange."""

    __slots__ = ("handler",)

    def __init__(self, handler: Handler) -> None:
        # A handler that is an object with __call__ (the bookstore is one) is called through
        # its bound method: calling the instance costs ~70 ns more per request.
        call: Handler = handler
        if isinstance(type(handler).__dict__.get("__call__"), types.FunctionType):
            call = handler.__call__  # type: ignore[operator]
        self.handler = call

    def handle(self, exchange: Exchange) -> None:
        """The runtime's `interface`: pass this bound method, not the instance (calling an
        instance goes through `__call__` and costs ~70 ns more per request)."""
        if not exchange.body_complete:
            exchange.on_body_complete = self.handle  # called again once the last byte is in
            return
        target = exchange.target
        split = target.find(b"?")
        if split < 0:
            path, query = target.decode("latin-1"), ""
        else:
            path, query = target[:split].decode("latin-1"), target[split + 1 :].decode("latin-1")
        method = exchange.method
        adapter = exchange.adapter
        request = Request(
            _METHOD_NAMES.get(method) or method.decode("latin-1"),
            path,
            query,
            exchange.headers,
            exchange.take_body() if exchange.body_size else b"",
            exchange.http_version,
            adapter.scheme,
            exchange.authority.decode("latin-1"),
            adapter.client,
        )
        # The handler runs inline; a sync one's Response is sent before it returns.
        try:
            result = self.handler(request)
        except Exception:
            log.exception("handler failed for %r", request)
            result = INTERNAL_ERROR
        if type(result) is Response or isinstance(result, Response):
            if result.hints is not None:
                send_hints(exchange, result.hints)
            exchange.respond(result)
        elif inspect.isawaitable(result):
            exchange.task = asyncio.get_running_loop().create_task(
                _answer_later(exchange, request, result)
            )
        else:
            log.error("handler returned %r for %r, not a Response", type(result).__name__, request)
            exchange.respond(INTERNAL_ERROR)


async def _answer_later(exchange: Exchange, request: Request, pending: Awaitable[Response]) -> None:
    try:
        result = await pending
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("handler failed for %r", request)
        result = INTERNAL_ERROR
    if not isinstance(result, Response):
        log.error("handler returned %r for %r, not a Response", type(result).__name__, request)
        result = INTERNAL_ERROR
    if result.hints is not None:
        send_hints(exchange, result.hints)
    exchange.respond(result)


def send_hints(exchange: Exchange, hints: Hints) -> None:
    """A response's `Hints`: the 103 Early Hints (never to an HTTP/1.0 client), then the
    pushes, until the first one the server, the protocol or the client refuses."""
    if hints.early and exchange.http_version != "1.0":
        exchange.inform(103, hints.early)
    if exchange.method != b"GET":
        return  # a HEAD wants the head of this response, not its resources
    for target in hints.push:
        if not exchange.push(target):
            break
