"""The post's own server: Twisted (``twisted[tls,http2]``) with its two resources.

``python -m h2books.bench.peers.twisted_server --port P --data-dir D --cert C --key K``

Like the post: a `Site` with the index at ``/`` and the books at ``/book?id=N``,
served over TLS through Twisted's ``ssl:`` endpoint, which offers ``h2`` by ALPN
when the ``h2`` package is installed. The bodies are precomputed, as for every
server in the benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from h2books.bench.peers.catalog import Bodies, load_bodies

__all__ = ["build_site", "main"]

_JSON = b"application/json"


def _twisted(name: str) -> Any:
    # Twisted is optional and only partly typed: it is used as an untyped module.
    return importlib.import_module(name)


def build_site(bodies: Bodies) -> Any:
    server = _twisted("twisted.web.server")
    base: Any = _twisted("twisted.web.resource").Resource

    not_found = json.dumps({"error": "no book with this id"}).encode()
    id_missing = json.dumps({"error": "missing query parameter: id"}).encode()

    class Index(base):  # type: ignore[misc]
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:
            request.setHeader(b"content-type", _JSON)
            return bodies.index

    class Book(base):  # type: ignore[misc]
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:
            request.setHeader(b"content-type", _JSON)
            ids = request.args.get(b"id")
            if not ids:
                request.setResponseCode(400)
                return id_missing
            body = bodies.books.get(ids[0].decode("latin-1"))
            if body is None:
                request.setResponseCode(404)
                return not_found
            return body

    root = base()
    root.putChild(b"", Index())
    root.putChild(b"book", Book())
    return server.Site(root)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twisted_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    args = parser.parse_args(argv)

    endpoints = _twisted("twisted.internet.endpoints")
    reactor = _twisted("twisted.internet.reactor")
    http = _twisted("twisted.web.http")

    site = build_site(load_bodies(args.data_dir))
    quote = endpoints.quoteStringArgument
    description = (
        f"ssl:port={args.port}:interface={quote(args.host)}"
        f":privateKey={quote(str(args.key))}:certKey={quote(str(args.cert))}"
    )
    endpoints.serverFromString(reactor, description).listen(site)
    h2 = "h2 and http/1.1" if getattr(http, "H2_ENABLED", False) else "http/1.1 only"
    print(
        f"twisted serving on https://{args.host}:{args.port}/ ({h2})", file=sys.stderr, flush=True
    )
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
