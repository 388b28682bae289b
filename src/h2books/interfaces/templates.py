"""One Response per response head, lent to every whole answer sent with that head.

The adapters keep a Response's encodings on the object itself (its HTTP/2 fields and
HPACK block, its HTTP/1.1 head; per Date second: server/responses.py). An ASGI or WSGI app
hands over a new header list with every answer, so a new Response per answer would miss
every one of those caches. Both interfaces therefore keep their checked heads (ASGI:
`asgi_fields.Head`, WSGI: `wsgi_heads.WsgiHead`), and each head one template Response
that carries each whole answer's body in turn (`respond_whole`).

The heads are cached by the app's own (status, header list) in a dict per interface
instance (`keep_head`), never per process: a head's template carries the encodings of
the server that built them (its alt-svc, its server name), and its body is lent on that
server's loop only. The cache is bounded in count and in size: a head over
`LARGEST_CACHED_HEAD` octets (an app that echoes a request's path into a location, say) is
checked and sent, not kept, so at most HEADS_MAX small heads (and their encodings) stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from h2books.http import Response
from h2books.server.exchange import Exchange

__all__ = ["HEADS_MAX", "LARGEST_CACHED_HEAD", "TemplateHead", "keep_head", "respond_whole"]

# Enough for an app whose answers differ by a content-length or an etag per resource (a
# catalogue of a few thousand): below that, every request missed and paid the checks, the
# head's encodings and an HPACK encoding again (~20 µs per request on the bookstore).
HEADS_MAX = 4096
LARGEST_CACHED_HEAD = 1024  # octets of field names and values

HeadT = TypeVar("HeadT")


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


def keep_head(
    heads: dict[tuple[Any, ...], HeadT],
    key: tuple[Any, ...],
    head: HeadT,
    fields: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
) -> None:
    """Cache `head` under `key` in an interface's `heads`, within the bounds above."""
    if sum(len(name) + len(value) for name, value in fields) > LARGEST_CACHED_HEAD:
        return
    if len(heads) >= HEADS_MAX:
        heads.clear()
    heads[key] = head
