"""One Response per response head, lent to every whole answer sent with that head.

The adapters keep a Response's encodings on the object itself (its HTTP/2 fields and
HPACK block, its HTTP/1.1 head; per Date second: server/responses.py). An ASGI or WSGI app
hands over a new header list with every answer, so a new Response per answer would miss
every one of those caches. Both interfaces therefore keep their checked heads (ASGI:
`asgi_fields.Head`, WSGI: `wsgi_heads.WsgiHead`), and each head one template Response
that carries each whole answer's body in turn (`respond_whole`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from h2books.http import Response
from h2books.server.exchange import Exchange

__all__ = ["TemplateHead", "respond_whole"]


class TemplateHead(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def fields(self) -> list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]: ...

    template: Response | None


def respond_whole(
    exchange: Exchange,
    head: TemplateHead,
    body: bytes,
    respond: Callable[[Exchange, Response], None] = Exchange.respond,
) -> None:
    """Send `body` with `head` through `respond` (on the loop), by the head's template.

    Only an HTTP/1.1 answer whose turn has not come yet (pipelining) is kept by the
    adapter after the call: that one keeps the template, and the head gets a new one.
    """
    template = head.template
    if template is None:
        template = head.template = Response(head.status, head.fields)
    template.body = body
    respond(exchange, template)
    if exchange.held is template:
        head.template = None
    else:
        template.body = b""  # never pin a body past its answer
