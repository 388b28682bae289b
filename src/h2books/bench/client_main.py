"""One client crawl in its own process: ``python -m h2books.bench.client_main CLIENT URL ...``.

The benchmark runs every Python client in a fresh process pinned to the client
core, so that no client's imports, caches or garbage collection leak into the
next cell and a crashed or stalled client can be killed. The process prints one
JSON line: ``{"ok": true, "wall": s, "user": s, "sys": s, "requests": n,
"http_version": ..., "headers": {...} or null}`` or ``{"ok": false, "error": "one line"}``
(``headers``: the header bytes per direction, `HeaderBytes`, from our client).

The timed window is the crawl itself (index, then every book), measured inside
the process (``getrusage`` of this process): interpreter start-up and imports
are not part of any client's figures, ours included.

* ``ours``:     `h2books.client.crawl.crawl`, 100 requests in flight (sliding window);
* ``requests``: the post's HTTP/1.1 client: one keep-alive session, one request at a time;
* ``httpx``:    the stand-in for the post's hyper: batches of 100 in flight on one
                connection, each batch awaited whole, like the post's chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CLIENTS", "CrawlFailed", "main"]

BATCH = 100


class CrawlFailed(Exception):
    """The crawl did not fetch every book as a 200 with a JSON body."""


class _Figures:
    __slots__ = ("headers", "http_version", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.http_version = ""
        # `h2books.client.stats.HeaderBytes.as_dict()`, from clients that count them (ours).
        self.headers: dict[str, Any] | None = None


def _check_index(status: int, content: bytes) -> list[str]:
    if status != 200:
        raise CrawlFailed(f"index: status {status}, expected 200")
    try:
        ids = json.loads(content)
    except ValueError as exc:
        raise CrawlFailed(f"index: the body is not JSON ({exc})") from None
    if not isinstance(ids, list):
        raise CrawlFailed("index: expected a JSON array of book ids")
    return [str(book_id) for book_id in ids]


def _check_book(book_id: str, status: int, content: bytes) -> None:
    if status != 200:
        raise CrawlFailed(f"book {book_id}: status {status}, expected 200")
    try:
        json.loads(content)
    except ValueError:
        raise CrawlFailed(f"book {book_id}: the body is not JSON ({len(content)} bytes)") from None


def crawl_ours(url: str, http2: bool, cacert: Path, figures: _Figures) -> None:
    from h2books.client.crawl import CrawlError, CrawlOptions, crawl, run
    from h2books.client.stats import HeaderBytes

    options = CrawlOptions(url=url, http2=http2, cacert=cacert, timeout=None)
    try:
        result = run(lambda: crawl(options))
    except CrawlError as exc:
        raise CrawlFailed(str(exc)) from None
    figures.requests = result.requests
    figures.http_version = result.http_version
    protocol = "h2" if result.http_version == "HTTP/2" else "h1"
    figures.headers = HeaderBytes.of(protocol, result.wire, result.requests).as_dict()


def crawl_requests(url: str, http2: bool, cacert: Path, figures: _Figures) -> None:
    import requests

    if http2:
        raise CrawlFailed("requests speaks HTTP/1.1 only")
    with requests.Session() as session:
        # The environment's CA bundle (REQUESTS_CA_BUNDLE) or proxies must not apply here.
        session.trust_env = False
        session.verify = str(cacert)
        index = session.get(url + "/")
        ids = _check_index(index.status_code, index.content)
        for book_id in ids:
            response = session.get(url + "/book", params={"id": book_id})
            _check_book(book_id, response.status_code, response.content)
        figures.requests = len(ids) + 1
        figures.http_version = "HTTP/1.1"


def crawl_httpx(url: str, http2: bool, cacert: Path, figures: _Figures) -> None:
    import httpx

    async def main() -> None:
        context = ssl.create_default_context(cafile=str(cacert))
        async with httpx.AsyncClient(
            http2=http2, http1=not http2, verify=context, trust_env=False
        ) as client:
            index = await client.get(url + "/")
            ids = _check_index(index.status_code, index.content)
            figures.http_version = index.http_version
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                responses = await asyncio.gather(
                    *(client.get(url + "/book", params={"id": book_id}) for book_id in batch)
                )
                for book_id, response in zip(batch, responses, strict=True):
                    _check_book(book_id, response.status_code, response.content)
            figures.requests = len(ids) + 1

    asyncio.run(main())


CLIENTS: dict[str, Callable[[str, bool, Path, _Figures], None]] = {
    "ours": crawl_ours,
    "requests": crawl_requests,
    "httpx": crawl_httpx,
}


def _timed(client: Callable[[str, bool, Path, _Figures], None], args: Any) -> dict[str, Any]:
    figures = _Figures()
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    wall_start = time.perf_counter()
    client(args.url.rstrip("/"), args.http2, args.cacert, figures)
    wall = time.perf_counter() - wall_start
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ok": True,
        "wall": wall,
        "user": usage_end.ru_utime - usage_start.ru_utime,
        "sys": usage_end.ru_stime - usage_start.ru_stime,
        "requests": figures.requests,
        "http_version": figures.http_version,
        "headers": figures.headers,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="h2books.bench.client_main")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("url")
    parser.add_argument("--http2", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--cacert", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        report = _timed(CLIENTS[args.client], args)
    except CrawlFailed as exc:
        report = {"ok": False, "error": str(exc)}
    except Exception as exc:  # a client library's own failure is the cell's result
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
