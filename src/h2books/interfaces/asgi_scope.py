"""The ASGI `scope` of a request: built from its exchange, with the constant part per connection.

Most of a scope is the same for every request on a connection: the type, the ASGI and
spec versions, the HTTP version, the scheme, root_path, client, server, and the
extensions. That part is built once and kept on the connection (`adapter.interface_data`);
each request copies it (one dict copy) and adds its own method, path, query and headers.

A request's path is decoded once per distinct path, not per request: the decoded form of
recent paths is kept (`ScopeSettings.paths`, bounded), keyed by the raw path without its
query, so `/book?id=1` and `/book?id=2` share one entry.

Headers go to the app as the core parsed them: the same list, lowercase byte names and
values, no copy. HTTP/2 requests carry the authority as `:authority`, which the spec
wants as a leading `host` field when no Host field came (the core has already checked
that a Host field agrees with `:authority`); `AsgiInterface.handle` adds it.

The websocket scope reuses `request_parts` and `connection_parts`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from h2books.interfaces.proxy import TrustedProxies, forwarded_origin

if TYPE_CHECKING:
    from h2books.server.exchange import Exchange

ASGI_VERSION = "3.0"
# The HTTP + WebSocket message format this server implements: 2.4 is where send() on a
# closed connection raises an OSError, which lets Starlette stream without a task group.
HTTP_SPEC_VERSION = "2.5"
LIFESPAN_SPEC_VERSION = "2.0"
HTTP_ASGI = {"version": ASGI_VERSION, "spec_version": HTTP_SPEC_VERSION}

# An ASGI 3 application: scope, receive, send (the one type of it, HTTP and WebSocket).
AsgiApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def extensions_for(
    http_version: str, push_available: bool = False, early_hints: bool = True
) -> dict[str, dict[str, Any]]:
    """What the server offers on top of the core spec, per protocol. `push_available`:
    the connection can push now (`ServerConnection.can_push`: HTTP/2, `--push`, and a
    client that kept SETTINGS_ENABLE_PUSH at 1), so `http.response.push` is offered.
    `early_hints`: the server sends 103s (not `--no-early-hints`)."""
    extensions: dict[str, dict[str, Any]] = {"http.response.pathsend": {}}
    if http_version != "1.0":
        if early_hints:
            extensions["http.response.early_hint"] = {}  # 1xx never go to HTTP/1.0 clients
        # Over HTTP/1.1 they go in the chunked coding's trailer section (a response with
        # its own content-length has none: they are dropped there, as RFC 9112 §7.1.2
        # allows no other place); HTTP/1.0 has no trailers at all.
        extensions["http.response.trailers"] = {}
    if push_available:
        extensions["http.response.push"] = {}
    return extensions


# Method names as apps see them, without a decode per request.
METHOD_NAMES = {
    name.encode("ascii"): name
    for name in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}


# The decoded-path cache: paths up to this long, this many of them (then it starts over),
# so at most ~1 MiB however the paths vary.
_CACHED_PATH_MAX = 256
_CACHED_PATHS_MAX = 2048
_PERCENT = 0x25  # `37 in raw` is ~5x cheaper than `b"%" in raw` (no buffer protocol)


class ScopeSettings:
    """What every scope of one interface shares: the mount point, the proxy rules, and the
    recently seen paths decoded."""

    __slots__ = ("paths", "root_path", "root_path_bytes", "trusted")

    def __init__(self, root_path: str, trusted: TrustedProxies | None) -> None:
        self.root_path = root_path.rstrip("/")
        self.root_path_bytes = self.root_path.encode("utf-8")
        self.trusted = trusted  # None: proxy headers are not honoured
        # raw path as it came (no query) -> (path, raw_path) as the scope has them
        self.paths: dict[bytes, tuple[str, bytes]] = {}


def connection_parts(exchange: Exchange, settings: ScopeSettings) -> tuple[dict[str, Any], bool]:
    """The constant part of an http scope on this connection, and whether its peer is a
    trusted proxy (whose forwarding headers then count per request)."""
    adapter = exchange.adapter
    http_version = exchange.http_version
    trusted = settings.trusted
    client = adapter.client
    behind_proxy = trusted is not None and client is not None and client[0] in trusted
    base: dict[str, Any] = {
        "type": "http",
        "asgi": HTTP_ASGI,
        "http_version": http_version,
        "scheme": adapter.scheme,
        "root_path": settings.root_path,
        "client": client,
        "server": adapter.server,
        "extensions": extensions_for(
            http_version, adapter.can_push, adapter.state.config.early_hints
        ),
    }
    return base, behind_proxy


def request_parts(target: bytes, settings: ScopeSettings) -> tuple[str, bytes, bytes]:
    """(path, raw_path, query_string) of a request target; the path percent-decoded and
    read as UTF-8, both paths with root_path in front (the path the client asked for)."""
    raw, _, query = target.partition(b"?")
    paths = settings.paths
    known = paths.get(raw)
    if known is None:
        known = _decoded(raw, settings)
        if len(raw) <= _CACHED_PATH_MAX:
            if len(paths) >= _CACHED_PATHS_MAX:
                paths.clear()
            paths[raw] = known
    return known[0], known[1], query


def _decoded(raw_path: bytes, settings: ScopeSettings) -> tuple[str, bytes]:
    if raw_path[:1] != b"/" and raw_path != b"*":
        raw_path = _origin_form(raw_path)
    if _PERCENT in raw_path:
        path = unquote_to_bytes(raw_path).decode("utf-8", "replace")
    else:
        path = raw_path.decode("utf-8", "replace")
    root = settings.root_path
    if root:
        path = root + path
        raw_path = settings.root_path_bytes + raw_path
    return path, raw_path


def _origin_form(target: bytes) -> bytes:
    """The path of an absolute-form target (`http://host/path`, HTTP/1.1 proxies' form)."""
    scheme_end = target.find(b"://")
    if scheme_end < 0:
        return target
    slash = target.find(b"/", scheme_end + 3)
    return target[slash:] if slash >= 0 else b"/"


def apply_proxy(
    scope: dict[str, Any], headers: list[tuple[bytes, bytes]], settings: ScopeSettings
) -> None:
    """Overwrite client and scheme with what a trusted proxy says."""
    assert settings.trusted is not None
    client, scheme = forwarded_origin(headers, scope["client"], scope["scheme"], settings.trusted)
    scope["client"] = client
    scope["scheme"] = scheme
