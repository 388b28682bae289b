"""One client crawl in its own process: ``python -m h2books.bench.client_main CLIENT URL ...``.

The benchmark runs every Python client in a fresh process pinned to the client
core, so that no client's imports, caches or garbage collection leak into the
next cell and a crashed or stalled client can be killed. The process prints one
JSON line: ``{"ok": true, "wall": s, "user": s, "sys": s, "requests": n,
"pushed": n, "http_version": ..., "headers": {...} or null}`` or ``{"ok": false, "error":
"one line"}`` (``headers``: the header bytes per direction, `HeaderBytes`, from our client).

The timed window is the crawl itself, measured inside the process: ``wall`` runs
from the first request (connecting included) to the last book checked, for every
client alike, and ``user``/``sys`` (``getrusage`` of this process) cover the client
function. Interpreter start-up and imports are not part of any client's figures,
nor is closing the connections: a client that waits for the server's TLS
close_notify, as ours does, pays one more round trip there (`CrawlResult.close`).

* ``ours``:     `h2books.client.crawl.crawl`, 100 requests in flight (sliding window);
                with ``--http3``, the same over HTTP/3 (QUIC);
                ``--connections N`` spreads them, ``--push`` takes the books pushed;
* every client: ``--books N`` crawls the index and the first N books only;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from h2books.argtypes import positive_int

__all__ = ["CLIENTS", "Crawl", "CrawlFailed", "main"]

BATCH = 100


class CrawlFailed(Exception):
    """The crawl did not fetch every book as a 200 with a JSON body."""


class _Figures:
    __slots__ = ("headers", "http_version", "pushed", "requests", "wall")

    def __init__(self) -> None:
        self.wall = 0.0  # seconds from the first request to the last book checked
        self.requests = 0
        self.pushed = 0  # books that came pushed (ours with --push)
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


@dataclass(frozen=True, slots=True)
class Crawl:
    """What one client process crawls, and how: the options of the command line."""

    url: str
    cacert: Path
    http2: bool = True
    books: int | None = None  # only the first N books the index lists
    connections: int = 1  # ours only
    push: bool = False  # ours only (HTTP/2)
    http3: bool = False  # ours only: HTTP/3 over QUIC (the only Python client here that speaks it)

    def first_books(self, ids: list[str]) -> list[str]:
        return ids if self.books is None else ids[: self.books]


def crawl_ours(crawl_: Crawl, figures: _Figures) -> None:
    from h2books.client.crawl import CrawlError, CrawlOptions, crawl, run
    from h2books.client.stats import HeaderBytes

    options = CrawlOptions(
        url=crawl_.url,
        http2=crawl_.http2,
        http3=crawl_.http3,
        cacert=crawl_.cacert,
        # The bench bounds the whole run; a per-request limit would fail h1 over one
        # connection at a high RTT, where a request waits its turn behind 99 others.
        timeout=None,
        request_timeout=None,
        connections=crawl_.connections,
        push=crawl_.push,
        books=crawl_.books,
    )
    try:
        result = run(lambda: crawl(options))
    except CrawlError as exc:
        raise CrawlFailed(str(exc)) from None
    figures.wall = result.wall
    figures.requests = result.requests
    figures.http_version = result.http_version
    figures.pushed = result.pushed
    protocol = {"HTTP/2": "h2", "HTTP/3": "h3"}.get(result.http_version, "h1")
    figures.headers = HeaderBytes.of(protocol, result.wire, result.requests).as_dict()


def crawl_requests(crawl_: Crawl, figures: _Figures) -> None:
    import requests

    if crawl_.http2:
        raise CrawlFailed("requests speaks HTTP/1.1 only")
    url = crawl_.url
    with requests.Session() as session:
        # The environment's CA bundle (REQUESTS_CA_BUNDLE) or proxies must not apply here.
        session.trust_env = False
        session.verify = str(crawl_.cacert)
        started = time.perf_counter()
        index = session.get(url + "/")
        ids = crawl_.first_books(_check_index(index.status_code, index.content))
        for book_id in ids:
            response = session.get(url + "/book", params={"id": book_id})
            _check_book(book_id, response.status_code, response.content)
        figures.wall = time.perf_counter() - started
        figures.requests = len(ids) + 1
        figures.http_version = "HTTP/1.1"


def crawl_httpx(crawl_: Crawl, figures: _Figures) -> None:
    import httpx

    url, http2 = crawl_.url, crawl_.http2

    async def main() -> None:
        context = ssl.create_default_context(cafile=str(crawl_.cacert))
        async with httpx.AsyncClient(
            http2=http2, http1=not http2, verify=context, trust_env=False
        ) as client:
            started = time.perf_counter()
            index = await client.get(url + "/")
            ids = crawl_.first_books(_check_index(index.status_code, index.content))
            figures.http_version = index.http_version
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                responses = await asyncio.gather(
                    *(client.get(url + "/book", params={"id": book_id}) for book_id in batch)
                )
                for book_id, response in zip(batch, responses, strict=True):
                    _check_book(book_id, response.status_code, response.content)
            figures.wall = time.perf_counter() - started
            figures.requests = len(ids) + 1

    asyncio.run(main())


CLIENTS: dict[str, Callable[[Crawl, _Figures], None]] = {
    "ours": crawl_ours,
    "requests": crawl_requests,
    "httpx": crawl_httpx,
}
# What only our client does: spread over connections, take pushes.
_OURS_ONLY = ("connections", "push", "http3")


def _timed(client: Callable[[Crawl, _Figures], None], crawl_: Crawl) -> dict[str, Any]:
    figures = _Figures()
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    client(crawl_, figures)
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "ok": True,
        "wall": figures.wall,
        "user": usage_end.ru_utime - usage_start.ru_utime,
        "sys": usage_end.ru_stime - usage_start.ru_stime,
        "requests": figures.requests,
        "pushed": figures.pushed,
        "http_version": figures.http_version,
        "headers": figures.headers,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="h2books.bench.client_main")
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("url")
    parser.add_argument("--http2", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--http3", action="store_true", help="HTTP/3 (ours only)")
    parser.add_argument("--cacert", type=Path, required=True)
    parser.add_argument("--books", type=positive_int, help="only the first N books")
    parser.add_argument("--connections", type=positive_int, default=1, help="ours only")
    parser.add_argument("--push", action="store_true", help="ours only, HTTP/2: take pushes")
    args = parser.parse_args(argv)
    crawl_ = Crawl(
        args.url.rstrip("/"),
        args.cacert,
        args.http2 and not args.http3,
        args.books,
        args.connections,
        args.push,
        args.http3,
    )
    if args.client != "ours" and (crawl_.connections != 1 or crawl_.push or crawl_.http3):
        parser.error(f"--{'/--'.join(_OURS_ONLY)}: our client only, not {args.client}")
    try:
        report = _timed(CLIENTS[args.client], crawl_)
    except CrawlFailed as exc:
        report = {"ok": False, "error": str(exc)}
    except Exception as exc:  # a client library's own failure is the cell's result
        report = {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
