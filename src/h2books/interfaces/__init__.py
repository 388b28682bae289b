"""What runs above the protocol-neutral exchange: the native handler API, ASGI, WSGI.

An interface is what the runtime hands each request to. It has three parts:

- `handle(exchange)`: called once per request, as soon as its head is in; it must not
  raise (a failing app is the interface's to answer: a 500, a reset, a log line);
- `await startup()`: before the server accepts its first connection (ASGI lifespan);
  an exception stops the server from starting;
- `await shutdown()`: after the last in-flight exchange has finished or been cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from h2books.server.exchange import Exchange


class ServerInterface:
    """The base of every interface; startup and shutdown do nothing unless overridden."""

    __slots__ = ()

    def handle(self, exchange: Exchange) -> None:
        raise NotImplementedError

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None
