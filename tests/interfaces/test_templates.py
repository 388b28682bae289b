"""The head cache's bounds and the template rule shared by the ASGI and WSGI interfaces."""

from __future__ import annotations

from typing import Any

from h2books.interfaces.asgi import AsgiInterface
from h2books.interfaces.templates import HEADS_MAX, LARGEST_CACHED_HEAD, keep_head
from h2books.interfaces.wsgi import WsgiInterface
from h2books.server.config import ServerConfig


def test_a_small_head_is_kept_and_a_big_one_is_not() -> None:
    heads: dict[tuple[Any, ...], str] = {}
    small = [(b"content-type", b"text/plain")]
    big = [(b"location", b"/" + b"x" * LARGEST_CACHED_HEAD)]
    keep_head(heads, ("small",), "small head", small)
    keep_head(heads, ("big",), "big head", big)
    assert heads == {("small",): "small head"}


def test_the_cache_is_bounded_in_count() -> None:
    heads: dict[tuple[Any, ...], int] = {}
    for n in range(HEADS_MAX + 10):
        keep_head(heads, (n,), n, [(b"etag", b"%d" % n)])
        assert len(heads) <= HEADS_MAX
    assert (HEADS_MAX + 9,) in heads


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - not called
    pass


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
    return []


def test_each_interface_has_its_own_heads() -> None:
    """A head's template carries the encodings of the server that built them (its
    alt-svc, its server name) and lends its body on that server's loop: two servers in one
    process must not share one."""
    config = ServerConfig()
    assert AsgiInterface(_app, config).heads is not AsgiInterface(_app, config).heads
    first, second = WsgiInterface(_wsgi_app, config), WsgiInterface(_wsgi_app, config)
    assert first._heads is not second._heads
