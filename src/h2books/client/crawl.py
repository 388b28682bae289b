"""The post's experiment as one function: fetch the index, then every book, and time it.

`crawl` fetches ``/`` (a JSON array of book ids), then ``/book?id=N`` for each
id, checks that every answer is a 200 with a JSON body and that all of them
arrived, and reports the post's figures: wall time, user and system CPU
(``getrusage`` deltas of this process), CPU%, requests/s, CPU per request, and
the bytes on the wire split into header fields, bodies and framing.

Requests are kept in flight as a sliding window (a new one leaves as soon as
one completes) or, with ``chunked``, exactly the post's way: send a batch,
wait for the whole batch, send the next. Both are driven by `Client.send`'s
callbacks, called from the read that completed each response: no task, no
coroutine and no future per request. The first failure ends the crawl
with a `CrawlError` whose message is one line naming the book and the cause.
"""

from __future__ import annotations

import asyncio
import gc
import json
import json.scanner
import resource
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from h2books.client.client import MAX_HELD_PUSHES, Client
from h2books.client.errors import ClientError
from h2books.client.response import Response
from h2books.client.stats import HeaderBytes, WireCounts, WireStats

__all__ = ["CrawlError", "CrawlOptions", "CrawlResult", "check_json", "crawl", "run"]

T = TypeVar("T")


class CrawlError(Exception):
    """The crawl failed; the message is the one line to show."""


@dataclass(slots=True)
class CrawlOptions:
    url: str
    http2: bool = True
    http3: bool = False  # HTTP/3 over QUIC (then http2 is not looked at)
    concurrency: int = 100  # requests in flight (sliding window), or the batch size when chunked
    chunked: bool = False
    connections: int = 1
    cacert: Path | None = None
    insecure: bool = False
    timeout: float | None = 30.0  # the whole crawl
    request_timeout: float | None = 10.0  # each request, connecting included
    # HTTP/2: announce SETTINGS_ENABLE_PUSH=1 and take the books the server pushes with
    # the index instead of requesting them (`h2books serve --push`).
    push: bool = False
    connect_to: tuple[str, int] | None = None  # TCP there instead of the URL's (a delay proxy)
    # Only the first N books the index lists (the index is asked for as ``?books=N``,
    # which our bookstore honours): keeps a crawl at a high RTT short. None: every book.
    books: int | None = None


@dataclass(slots=True)
class CrawlResult:
    url: str
    http_version: str
    tls: bool
    books: int
    requests: int
    concurrency: int
    chunked: bool
    # From the first connection attempt to the last book checked: what "fetching the store"
    # takes, as curl's time_total is to its transfer. Closing is timed apart (`close`):
    # a TLS client that waits for the server's close_notify pays one more round trip
    # there, which a browser never waits for.
    wall: float
    user: float
    sys: float
    wire: WireStats = field(repr=False)
    # Books that came pushed: counted in `books` and `requests` (the responses the
    # figures are per), though no request of ours went out for them.
    pushed: int = 0
    listed: int = -1  # books the index listed (more than `books` with `--books N`); -1: as many
    close: float = 0.0  # closing the connections, after `wall`

    @property
    def limited(self) -> bool:
        return self.listed > self.books

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        return 1e6 * self.cpu / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "url": self.url,
            "http_version": self.http_version,
            "tls": self.tls,
            "books": self.books,
            "books_listed": self.listed if self.listed >= 0 else self.books,
            "requests": self.requests,
            "pushed": self.pushed,
            "connections": self.wire.connections,
            "concurrency": self.concurrency,
            "mode": "chunked" if self.chunked else "sliding",
            "wall_s": round(self.wall, 6),
            "close_s": round(self.close, 6),
            "user_s": round(self.user, 6),
            "sys_s": round(self.sys, 6),
            "cpu_percent": round(self.cpu_percent, 1),
            "requests_per_s": round(self.requests_per_second, 1),
            "cpu_us_per_request": round(self.cpu_us_per_request, 1),
            "wire": self.wire.as_dict(),
        }

    def _in_flight_text(self) -> str:
        if self.http_version in ("HTTP/2", "HTTP/3"):
            return f"{self.concurrency} requests in flight"
        # HTTP/1.1 without pipelining: the window only feeds each connection's queue.
        return f"{self.concurrency} requests submitted, one at a time per connection"

    def _wire_title(self) -> str:
        # QUIC encrypts each packet: its figures are whole UDP payloads (client/stats_h3.py).
        if self.http_version == "HTTP/3":
            return "bytes on the wire (UDP payloads)"
        return "bytes on the wire (before TLS)"

    def report(self) -> str:
        """The figures for a terminal, the post's first."""
        transport = "TLS" if self.tls else "cleartext"
        mode = "batches" if self.chunked else "sliding window"
        connections = self.wire.connections
        plural = "" if connections == 1 else "s"
        sent, received = self.wire.sent, self.wire.received
        fetched = (
            f"{self.books} of the {self.listed} books" if self.limited else f"{self.books} books"
        )
        lines = [
            f"{fetched} fetched from {self.url} over {self.http_version} ({transport}), "
            "all 200 and JSON",
            f"  {connections} connection{plural}, {self._in_flight_text()} ({mode})",
            f"  wall {self.wall:.3f} s (then {self.close:.3f} s closing)   "
            f"user {self.user:.3f} s   sys {self.sys:.3f} s   CPU {self.cpu_percent:.0f}%",
            f"  {self.requests} requests   {self.requests_per_second:,.0f} requests/s   "
            f"{self.cpu_us_per_request:,.0f} µs CPU per request",
        ]
        if self.pushed:
            lines.append(
                f"  {self.pushed} of the {self.books} books came pushed with the index "
                f"(server push): {self.requests - self.pushed} sent as requests"
            )
        lines += [
            f"  {self._wire_title():<31}{'headers':>12}{'bodies':>12}{'framing':>12}{'total':>12}",
        ]
        for name, counts in (("sent", sent), ("received", received)):
            lines.append(
                f"    {name:<29}{counts.headers:>12,}{counts.body:>12,}"
                f"{counts.framing:>12,}{counts.total:>12,}"
            )
        lines += header_compression_lines(self.http_version, sent, received)
        return "\n".join(lines)


# How each protocol sends header fields.
_HEADER_CODING = {"HTTP/1.1": "text", "HTTP/2": "HPACK", "HTTP/3": "QPACK"}


def header_compression_lines(
    http_version: str, sent: WireCounts, received: WireCounts
) -> list[str]:
    """The header bytes on the wire against the same fields uncompressed, per direction."""
    coding = _HEADER_CODING.get(http_version, "?")
    lines = [f"  {'header fields (' + coding + ')':<31}{'wire':>12}{'plain':>12}{'saved':>12}"]
    for name, counts in (("sent (requests)", sent), ("received (responses)", received)):
        saved = HeaderBytes.saved(counts.headers, counts.headers_plain)
        lines.append(
            f"    {name:<29}{counts.headers:>12,}{counts.headers_plain:>12,}"
            f"{'-' if saved is None else f'{saved:.1%}':>12}"
        )
    return lines


# The cyclic collector's first threshold while a crawl runs (CPython's default: 700). A
# crawl allocates about a dozen container objects per book (events, streams, header
# lists, held pushes) and frees nearly all of them by reference counting; at 700 the
# collector runs every ~50 books and, with thousands of held pushes alive, its passes cost
# ~4,000 instructions per pushed book (2% of the client's work; cachegrind, PROFILE.md).
CRAWL_GC_THRESHOLD = 50_000


class _CollectorSetting:
    """The thresholds to put back, and how many crawls of this process run now: crawls
    may overlap (several in one loop), and only the last to end may restore them."""

    before: tuple[int, ...] = ()
    crawls = 0


@contextmanager
def _fewer_collections(threshold: int) -> Iterator[None]:
    """The collector's first threshold raised to `threshold` (never lowered) while any crawl
    runs, then restored."""
    setting = _CollectorSetting
    if not setting.crawls:
        setting.before = before = gc.get_threshold()
        gc.set_threshold(max(threshold, before[0]), *before[1:])
    setting.crawls += 1
    try:
        yield
    finally:
        setting.crawls -= 1
        if not setting.crawls:
            gc.set_threshold(*setting.before)


async def crawl(options: CrawlOptions) -> CrawlResult:
    """Run one crawl in the running loop; raises `CrawlError` on the first failure."""
    with _fewer_collections(CRAWL_GC_THRESHOLD):
        return await _crawl(options)


async def _crawl(options: CrawlOptions) -> CrawlResult:
    if options.concurrency < 1:
        raise CrawlError("--concurrency must be at least 1")
    if options.connections < 1:
        raise CrawlError("--connections must be at least 1")
    if options.books is not None and options.books < 1:
        raise CrawlError("--books must be at least 1")
    stats = WireStats()
    pushed_books = _PushedBooks() if options.push else None
    try:
        client = Client(
            options.url,
            http2=options.http2,
            http3=options.http3,
            cacert=options.cacert,
            insecure=options.insecure,
            connections=options.connections,
            timeout=options.request_timeout,
            stats=stats,
            push=options.push,
            connect_to=options.connect_to,
            # The server pushes every book the index lists, in its order: the first N are
            # the crawl's, the rest are declined at once rather than sent for nothing.
            push_limit=options.books,
            on_push=None if pushed_books is None else pushed_books.check,
        )
    except (ValueError, ClientError) as exc:
        raise CrawlError(str(exc)) from None
    progress = _Progress()
    wall_start = time.perf_counter()
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    fetched, usage_end = 0.0, usage_start
    try:
        async with asyncio.timeout(options.timeout):
            try:
                await client.connect()
                books = await _crawl_books(client, options, progress, pushed_books)
                fetched = time.perf_counter()
                usage_end = resource.getrusage(resource.RUSAGE_SELF)  # CPU of `wall`
            finally:
                await client.aclose()
    except TimeoutError:
        raise CrawlError(
            f"the crawl did not finish within {options.timeout:g} s "
            f"({progress.done} of {progress.total if progress.total >= 0 else '?'} books fetched)"
        ) from None
    except ClientError as exc:
        raise CrawlError(str(exc)) from None
    closed = time.perf_counter()
    return CrawlResult(
        url=options.url,
        http_version="HTTP/3" if options.http3 else "HTTP/2" if options.http2 else "HTTP/1.1",
        tls=client.origin.tls,
        books=books,
        requests=books + 1,
        concurrency=options.concurrency,
        chunked=options.chunked,
        wall=fetched - wall_start,
        close=closed - fetched,
        user=usage_end.ru_utime - usage_start.ru_utime,
        sys=usage_end.ru_stime - usage_start.ru_stime,
        wire=stats,
        # Not `client.pushes_taken`: that also counts pushes the listener took of books
        # the index does not list, or pushed again once taken.
        pushed=progress.pushed,
        listed=progress.listed,
    )


class _Progress:
    __slots__ = ("done", "listed", "pushed", "total")

    def __init__(self) -> None:
        self.done = 0
        self.pushed = 0  # of `done`, the books that came pushed
        self.total = -1  # books to fetch
        self.listed = -1  # books the index listed


async def _crawl_books(
    client: Client, options: CrawlOptions, progress: _Progress, pushed: _PushedBooks | None
) -> int:
    index_target = client.origin.path
    if options.books is not None:
        # Our bookstore then lists (and, with --push, pushes) only those; a server that
        # ignores the query lists every book, and the crawl takes the first N itself.
        index_target += f"{'&' if '?' in index_target else '?'}books={options.books}"
    try:
        index = await client.get(index_target)
    except ClientError as exc:
        raise CrawlError(f"index {index_target}: {exc}") from None
    ids = _book_ids(index, index_target)
    progress.listed = len(ids)
    if options.books is not None:
        ids = ids[: options.books]
    progress.total = len(ids)
    if not ids:
        return 0
    window = _Window(client, ids, options.concurrency, options.chunked, progress, pushed)
    window.start()
    await window.finished
    if progress.done != len(ids):  # pragma: no cover - the window only finishes when all arrived
        raise CrawlError(f"only {progress.done} of {len(ids)} books arrived")
    return progress.done


def _book_ids(index: Response, target: str) -> list[str]:
    if index.status != 200:
        raise CrawlError(f"index {target}: status {index.status}, expected 200")
    try:
        ids = index.json()
    except ValueError as exc:
        raise CrawlError(f"index {target}: the body is not JSON ({exc})") from None
    # One set of the types (json makes no subclasses; bool is not an id), not a test per id.
    if not isinstance(ids, list) or not {type(i) for i in ids} <= {str, int}:
        raise CrawlError(f"index {target}: expected a JSON array of book ids")
    return [str(i) for i in ids]


def _book_target(book_id: str) -> bytes:
    """``/book?id=N``, the id percent-encoded (quote() only when it is not plain
    alphanumeric ASCII: it costs ~1 µs a book)."""
    if book_id.isascii() and book_id.isalnum():
        return b"/book?id=" + book_id.encode("ascii")
    return b"/book?id=" + quote(book_id, safe="").encode("ascii")


class _PushedBooks:
    """The books the server pushed, checked as each arrives (`Client`'s ``on_push``): in
    the read that completed it, while the rest of the store is still on its way. Checked
    after the index instead, 3000 of them took ~7 ms past the last byte (~2.3 µs a book,
    the JSON check most of it), at 50 ms RTT the whole gap to the fetch of the same bytes
    (`benchmarks/push_transfer.py`). A push that fails the check is left to the client
    to hold: the window takes it and says what is wrong, as for any answer."""

    __slots__ = ("good",)

    def __init__(self) -> None:
        # target -> True: a 200 with a JSON body, not yet counted by the window.
        self.good: dict[bytes, bool] = {}

    def check(self, target: bytes, status: int, content: bytes) -> bool:
        # The client's bound on held pushes bounds this dict too (without `--books` nothing
        # else does): past it a push is held by the client, within that same bound.
        if status != 200 or len(self.good) >= MAX_HELD_PUSHES:
            return False
        try:
            check_json(content)
        except ValueError:
            return False
        self.good[target] = True
        return True


class _Window:
    """Keeps up to `concurrency` book requests in flight and checks each answer.

    With push, a book whose pushed response has arrived already (all of them, when the
    server pushes the books before the index) was checked as it came (`_PushedBooks`): it
    is counted at once, without a request and without a slot. One that arrived but
    failed the check is taken from the client (`Client.take_pushed_body`) and checked
    again here, which names the failure; one still coming is asked for, and its GET
    takes the push."""

    __slots__ = (
        "_batch",
        "_chunked",
        "_client",
        "_ids",
        "_in_flight",
        "_next",
        "_progress",
        "_pushed",
        "_targets",
        "finished",
    )

    def __init__(
        self,
        client: Client,
        ids: list[str],
        concurrency: int,
        chunked: bool,
        progress: _Progress,
        pushed: _PushedBooks | None = None,
    ) -> None:
        self._client = client
        self._ids = ids
        self._targets = [_book_target(i) for i in ids]
        self._batch = concurrency
        self._chunked = chunked
        self._progress = progress
        self._pushed = pushed
        self._next = 0
        self._in_flight = 0
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        self._fill()

    def _fill(self) -> None:
        """The next books while there is room: the window's free slots, or with `chunked`
        the next batch once the last one is over. A book whose push has arrived whole is
        counted (or checked) on the spot and takes no slot: a batch counts requests, so a
        batch that came all pushed cannot leave the crawl waiting for answers nobody asked
        for."""
        if self._chunked and self._in_flight:
            return
        targets = self._targets
        total = len(targets)
        pushed = self._pushed
        send = self._client.send
        on_done = self._on_done
        room = self._batch - self._in_flight
        index = self._next
        while room > 0 and index < total:
            if pushed is not None:
                target = targets[index]
                if pushed.good.pop(target, False):
                    index += 1
                    self._progress.done += 1
                    self._progress.pushed += 1
                    continue  # checked as it came: no request, no slot
                failed = self._client.take_pushed_body(target)
                if failed is not None:
                    index += 1
                    if not self._check(index - 1, failed[0], failed[1]):
                        self._next = index
                        return
                    self._progress.pushed += 1
                    continue  # held for want of room in `_PushedBooks`: good after all
            self._next = index + 1  # before `send`: an answer may come (and refill) at once
            room -= 1
            self._in_flight += 1
            send(b"GET", targets[index], partial(on_done, index))
            index = self._next
        self._next = index
        if not self._in_flight and self._next == total and not self.finished.done():
            self.finished.set_result(None)

    def _on_done(self, index: int, response: Response | None, error: BaseException | None) -> None:
        if self.finished.done():
            return
        if response is None:
            if not isinstance(error, asyncio.CancelledError):
                self._fail(f"book {self._ids[index]}: {error}")
            return
        if not self._check(index, response.status, response.content):
            return
        self._in_flight -= 1
        following = self._next
        if following < len(self._targets) and not self._chunked and self._pushed is None:
            # The sliding window without push: this book's slot takes the next at once.
            self._next = following + 1
            self._in_flight += 1
            self._client.send(b"GET", self._targets[following], partial(self._on_done, following))
            return
        if response.pushed:  # a push still coming when the window reached it
            self._progress.pushed += 1
        self._fill()

    def _check(self, index: int, status: int, content: bytes) -> bool:
        """Count the book if its answer is a 200 with a JSON body; else fail the crawl."""
        if status != 200:
            self._fail(
                f"book {self._ids[index]}: status {status} for GET "
                f"{self._targets[index].decode('latin-1')}, expected 200"
            )
            return False
        try:
            check_json(content)
        except ValueError as exc:
            self._fail(
                f"book {self._ids[index]}: the body is not JSON "
                f"({len(content)} bytes, truncated?): {exc}"
            )
            return False
        self._progress.done += 1
        return True

    def _fail(self, message: str) -> None:
        self.finished.set_exception(CrawlError(message))


# The C scanner that json.loads runs after its checks (json.decoder.JSONDecoder.scan_once).
# (typeshed types its argument as a scanner; it is the decoder whose settings it takes.)
_scan_json: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder()  # type: ignore[arg-type]
)
_UTF8_BOM = b"\xef\xbb\xbf"


def check_json(content: bytes) -> None:
    """Raise ValueError unless `content` is one JSON text, as `json.loads` would.

    JSON on the network is UTF-8 (RFC 8259 §8.1; a BOM may be ignored). The text is parsed
    whole by the scanner `json.loads` ends in, without its encoding detection and its
    Python-level steps (~3x cheaper on a book); anything the fast path does not accept
    whole (leading or trailing whitespace, an error) goes through `json.loads`, so the
    verdict and its message are json's own.
    """
    if content[:3] == _UTF8_BOM:
        content = content[3:]
    text = content.decode("utf-8")
    try:
        try:
            if _scan_json(text, 0)[1] == len(text):
                return
        except StopIteration:  # no value at 0: whitespace first, or not JSON
            pass
        json.loads(text)
    except RecursionError:
        # `[[[[...` from a server: a bad body like any other, not a crash of the crawl.
        raise ValueError("JSON nested too deeply") from None


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine in a fresh event loop, uvloop's when it is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
