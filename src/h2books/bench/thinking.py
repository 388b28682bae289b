"""The bookstore with think time: ``/store`` answered late, its 103 and pushes sent at once.

For the Early Hints measurement (``benchmarks/early_hints.py``) and its browser test only;
``h2books serve`` never uses it. Our bookstore computes ``/store`` before it has read the
next request, so its 103 and its 200 leave in the same write, and a browser learns of the
assets no sooner with the 103 than from the page itself: Early Hints cannot save anything
there. A real server spends time before a page's final response (a database, a
template), and that is the time a 103 fills. `ThinkingStorefront` models it: the page's
`Hints` go out as soon as the request is in (the 103, and the pushes with ``--push``),
and the page itself ``think`` seconds later, through the same bookstore. With no think
time the server is exactly ``h2books serve``'s: the bookstore as a native handler.

::

    python -m h2books.bench.thinking --think-ms 200 [--no-early-hints] [--push] \\
        [--port 0] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from h2books.app import create_app, open_catalog
from h2books.app.bookstore import Bookstore
from h2books.app.storefront import STORE_PATH
from h2books.http import Handler, Request, Response
from h2books.interfaces import ServerInterface
from h2books.interfaces.native import NativeInterface, send_hints
from h2books.server.config import ServerConfig, default_data_dir
from h2books.server.exchange import Exchange

__all__ = ["ThinkingStorefront", "main"]

_STORE_TARGET = STORE_PATH.encode("ascii")


class ThinkingStorefront(ServerInterface):
    """The bookstore, with a GET of ``/store`` answered `think` seconds after its hints."""

    __slots__ = ("bookstore", "hinted", "late", "think", "unhinted")

    def __init__(self, bookstore: Bookstore, think: float) -> None:
        self.bookstore = bookstore
        self.think = think
        self.hinted = NativeInterface(bookstore)  # every other request, as `serve` does
        # The late answer goes out without its hints: they went out ahead of the think.
        self.late = NativeInterface(self._without_hints)
        self.unhinted: dict[Response, Response] = {}

    def handle(self, exchange: Exchange) -> None:
        path = exchange.target.partition(b"?")[0]
        if exchange.method != b"GET" or path != _STORE_TARGET:
            self.hinted.handle(exchange)
            return
        hints = self.bookstore(_probe()).hints
        if hints is not None:
            send_hints(exchange, hints)
        exchange.adapter.state.loop.call_later(self.think, self._answer, exchange)

    def _answer(self, exchange: Exchange) -> None:
        if not exchange.gone:
            self.late.handle(exchange)

    def _without_hints(self, request: Request) -> Response:
        response = self.bookstore(request)
        if response.hints is None:
            return response
        plain = self.unhinted.get(response)
        if plain is None:
            plain = Response(response.status, response.headers, response.body)
            self.unhinted[response] = plain
        return plain


def _probe() -> Request:
    """A plain GET of the page, to read which hints the bookstore gives it now."""
    return Request("GET", STORE_PATH, "", [], b"", "2", "https", "localhost", None)


def build_app(data_dir: Path, think: float) -> Handler | ServerInterface:
    bookstore = create_app(data_dir)
    return ThinkingStorefront(bookstore, think) if think > 0 else bookstore


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m h2books.bench.thinking",
        description="The bookstore, /store answered --think-ms after its 103 Early Hints "
        "(a measurement aid, not a server to deploy).",
    )
    parser.add_argument("--think-ms", type=float, default=0.0, help="default 0: none")
    parser.add_argument("--early-hints", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--push", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args(argv)
    if args.think_ms < 0:
        parser.error("--think-ms must be 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    from h2books.cli import serve_until_stopped
    from h2books.server.runner import configure_logging

    args = parse_args(argv)
    config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir or default_data_dir(),
        access_log=args.access_log,
        push=args.push,
        early_hints=args.early_hints,
    )
    configure_logging(config.log_level)
    open_catalog(config.data_dir).close()  # the first run's catalogue, before the workers
    think = args.think_ms / 1000
    served = f"the bookstore, /store after {args.think_ms:g} ms of think time"
    data_dir = config.data_dir
    return serve_until_stopped(config, lambda: build_app(data_dir, think), served)


if __name__ == "__main__":
    sys.exit(main())
