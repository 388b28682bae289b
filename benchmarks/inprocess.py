"""Python cost per request of the server and client paths, in process (no sockets, no TLS).

    python benchmarks/inprocess.py h1-server             # runtime + h1 core + bookstore
    python benchmarks/inprocess.py h2-server             # runtime + h2 core + HPACK + bookstore
    python benchmarks/inprocess.py h1-post               # h1-server with a small POST body
    python benchmarks/inprocess.py h1-client             # one response in, the next request out
    python benchmarks/inprocess.py asgi-h2-server        # the same over ASGI: a minimal raw app
    python benchmarks/inprocess.py asgi-h2-server --app starlette   # ... or a Starlette route
    python benchmarks/inprocess.py asgi-h2-server --app bookstore   # ... or the bench's ASGI bookstore
    python benchmarks/inprocess.py h1-server --profile   # and the top functions (cProfile)
    python benchmarks/inprocess.py asgi-h2-server --app bookstore --instructions
    python benchmarks/inprocess.py h2-server --request-hpack indexed   # every field indexed

`--instructions` counts instead of timing (needs `apt-get install valgrind`): the mode runs
under cachegrind twice, with 1 and with 5 untimed rounds after the same set-up, and the
difference of the two totals per request is printed. It does not move with the machine's
load (PYTHONHASHSEED=0 makes runs repeat to within ~0.1%), so a change of 1% shows.

The protocol objects get a transport that only records, and requests shaped like h2load's
(``/book?id=N`` over all 3000 books), HPACK-encoded as h2load sends them (its `:path` a
literal without indexing) unless `--request-hpack indexed` asks for what the hpack library
(python-h2, httpx) sends: every field indexed, one table insertion per request. Each
figure is the best of 7 rounds: on a shared machine the minimum is the figure least
disturbed by others. Measured in a hot loop, the
cost is ~3x lower than in a real server, where a sleep between requests leaves the caches
cold; use it to compare versions in the same minute, not as an absolute.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from h2books.app import create_app
from h2books.client.base import ConnectionSettings
from h2books.client.connection_h1 import H1ClientProtocol
from h2books.client.exchange import Exchange
from h2books.client.origin import Origin
from h2books.client.stats import WireStats
from h2books.interfaces.native import NativeInterface
from h2books.protocol.hpack import Encoder
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.clock import WallClock
from h2books.server.config import ServerConfig
from h2books.server.state import ServerState

ROUNDS = 7
# --untimed-rounds: that many rounds, not timed (what --instructions counts).
_untimed: int | None = None
BOOKS = 3000


class Transport:
    """Enough of an asyncio transport for the protocols; keeps the last write."""

    def __init__(self) -> None:
        self.last = b""
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.last = data
        self.writes += 1

    def writelines(self, pieces: list[bytes | memoryview]) -> None:
        self.write(b"".join(pieces))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes((kind, flags))
        + struct.pack(">I", stream_id)
        + payload
    )


def _best(run_once: Callable[[], None], count: int) -> float:
    """Microseconds per request: the best of ROUNDS rounds of `count` requests."""
    if _untimed is not None:
        for _ in range(_untimed):
            _as_callback(run_once)
        print(f"requests per round: {count}")
        return 0.0
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        _as_callback(run_once)
        best = min(best, (time.perf_counter() - started) / count * 1e6)
    return best


def _as_callback(function: Callable[[], None]) -> None:
    """Run `function` as the loop runs a protocol's callbacks: outside any task (the
    ASGI interface steps apps inline under a task of its own)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        function()
        return
    asyncio.tasks._leave_task(loop, task)
    try:
        function()
    finally:
        asyncio.tasks._enter_task(loop, task)


def _state(data_dir: Path, interface: Callable[[Any], None] | None = None) -> ServerState:
    loop = asyncio.get_running_loop()
    config = ServerConfig(data_dir=data_dir, access_log=False)
    if interface is None:
        interface = NativeInterface(create_app(data_dir)).handle
    return ServerState(config, interface, loop, None, WallClock())


def _asgi_interface(app_name: str, data_dir: Path) -> Callable[[Any], None]:
    """The ASGI interface over a minimal raw app (the bookstore's /book answer, fixed), the
    same answer from a Starlette route, or the benchmark's ASGI bookstore (every book)."""
    from h2books.interfaces.asgi import AsgiInterface

    body = json.dumps({"id": "17", "title": "A title", "author": "An Author"}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    whole = {"type": "http.response.body", "body": body}

    async def raw(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(start)
        await send(whole)

    app: Any = raw
    if app_name == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        async def book(request: Any) -> Response:
            return Response(body, media_type="application/json")

        app = Starlette(routes=[Route("/book", book)])
    elif app_name == "bookstore":
        from h2books.bench.peers.asgi_app import BookstoreApp
        from h2books.bench.peers.replies import open_bookstore

        app = BookstoreApp(*open_bookstore(data_dir))
    return AsgiInterface(app, lifespan="off").handle


_APP = "raw"
# How the h2 requests are HPACK-encoded: "ours" leaves :path unindexed, as h2load and curl
# (nghttp2) do; "indexed" indexes every field, as the hpack library (python-h2, httpx) does,
# so that each request also inserts into the server's decoder table.
_REQUEST_HPACK = "ours"


async def asgi_h1_server(data_dir: Path) -> tuple[float, Callable[[], None]]:
    return await h1_server(data_dir, _asgi_interface(_APP, data_dir))


async def asgi_h2_server(data_dir: Path) -> tuple[float, Callable[[], None]]:
    return await h2_server(data_dir, _asgi_interface(_APP, data_dir))


async def h1_server(
    data_dir: Path, interface: Callable[[Any], None] | None = None
) -> tuple[float, Callable[[], None]]:
    protocol = H1ServerProtocol(_state(data_dir, interface), "https")
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    requests = [
        b"GET /book?id=%d HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
        b"User-Agent: h2load nghttp2/1.52.0\r\nAccept: */*\r\n\r\n" % i
        for i in range(1, BOOKS + 1)
    ]
    count = 20000

    def run_once() -> None:
        for i in range(count):
            protocol.data_received(requests[i % BOOKS])
        assert transport.last.startswith(b"HTTP/1.1 200 OK\r\n"), transport.last[:80]

    return _best(run_once, count), run_once


async def h1_post(data_dir: Path) -> tuple[float, Callable[[], None]]:
    """A small POST whose whole body comes in the read that brings its head (the bookstore
    answers 405: the cost measured is the request path's, body included)."""
    protocol = H1ServerProtocol(_state(data_dir), "https")
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    body = b'{"id": "17", "title": "A title", "author": "An Author", "pad": "xxxxxxxxxx"}'
    requests = [
        b"POST /book?id=%d HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
        b"User-Agent: h2load nghttp2/1.52.0\r\nAccept: */*\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (i, len(body), body)
        for i in range(1, BOOKS + 1)
    ]
    count = 20000

    def run_once() -> None:
        for i in range(count):
            protocol.data_received(requests[i % BOOKS])
        assert transport.last.startswith(b"HTTP/1.1 405 "), transport.last[:80]

    return _best(run_once, count), run_once


async def h2_server(
    data_dir: Path, interface: Callable[[Any], None] | None = None
) -> tuple[float, Callable[[], None]]:
    protocol = H2ServerProtocol(_state(data_dir, interface), "https")
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    # The peer's preface, a huge window, then reads of 100 requests each, like h2load -m100.
    settings = _frame(0x4, 0, 0, struct.pack(">HI", 0x4, (1 << 31) - 1))
    window = _frame(0x8, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535))
    protocol.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + window)
    encoder: Any = Encoder()
    if _REQUEST_HPACK == "indexed":
        import hpack

        encoder = hpack.Encoder()
    rounds = ROUNDS + 1
    batches: list[bytes] = []
    stream_id = 1
    for batch in range(rounds * 30):
        frames = []
        for j in range(100):
            book = (batch * 100 + j) % BOOKS + 1
            block = encoder.encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":authority", b"127.0.0.1:8443"),
                    (b":path", b"/book?id=%d" % book),
                    (b"user-agent", b"h2load nghttp2/1.52.0"),
                    (b"accept", b"*/*"),
                ]
            )
            frames.append(_frame(0x1, 0x4 | 0x1, stream_id, block))
            stream_id += 2
        batches.append(b"".join(frames))
    feed = iter(batches)

    def run_once() -> None:
        for _ in range(30):
            protocol.data_received(next(feed))

    return _best(run_once, 3000), run_once


async def h1_client(data_dir: Path) -> tuple[float, Callable[[], None]]:
    loop = asyncio.get_running_loop()

    class Owner:
        def requeue(self, exchanges: object, error: object) -> None:
            pass

        def retire(self, connection: object) -> None:
            pass

    body = json.dumps({"id": "17", "title": "A title", "author": "An Author"}).encode()
    response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
        b'etag: "6577d818a25c943e"\r\ncache-control: public, max-age=60\r\n'
        b"content-length: %d\r\nserver: h2books\r\ndate: Tue, 24 Nov 2026 03:40:17 GMT\r\n\r\n%s"
        % (len(body), body)
    )
    origin = Origin("https://localhost:8443")
    settings = ConnectionSettings(
        origin, ((b"user-agent", b"h2books"),), None, 1 << 26, WireStats()
    )
    count = 20000

    def run_once() -> None:
        # A fresh connection per round, with every request queued: each response lets the
        # next request out, as in a crawl over one keep-alive connection.
        protocol = H1ClientProtocol(Owner(), settings)
        protocol.connection_made(Transport())  # type: ignore[arg-type]
        for i in range(count + 1):
            future = loop.create_future()
            protocol.submit(Exchange(b"GET", b"/book?id=%d" % i, (), b"", future, 0.0))
        started = time.perf_counter()
        for _ in range(count):
            protocol.data_received(response)
        run_once.elapsed = time.perf_counter() - started  # type: ignore[attr-defined]

    if _untimed is not None:
        raise SystemExit("h1-client: each round sets up its connection too; time it instead")
    best = float("inf")
    for _ in range(ROUNDS):
        run_once()
        best = min(best, run_once.elapsed / count * 1e6)  # type: ignore[attr-defined]
    return best, run_once


MODES = {
    "h1-server": h1_server,
    "h1-post": h1_post,
    "h2-server": h2_server,
    "h1-client": h1_client,
    "asgi-h1-server": asgi_h1_server,
    "asgi-h2-server": asgi_h2_server,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--profile", action="store_true", help="then print the top functions")
    parser.add_argument("--data-dir", type=Path, help="a bookstore data directory")
    parser.add_argument(
        "--app",
        choices=["raw", "starlette", "bookstore"],
        default="raw",
        help="the ASGI app (asgi-* modes)",
    )
    parser.add_argument(
        "--request-hpack",
        choices=["ours", "indexed"],
        default="ours",
        help="h2 modes: requests encoded as h2load does (ours), or with every field indexed "
        "(the hpack library's encoder, as python-h2 clients)",
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request instead"
    )
    parser.add_argument("--untimed-rounds", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global _APP, _REQUEST_HPACK, _untimed
    _APP = args.app
    _REQUEST_HPACK = args.request_hpack
    _untimed = args.untimed_rounds
    if args.instructions:
        return _count_instructions(args.mode, args.app, args.request_hpack, args.data_dir)

    async def measure() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            data_dir = args.data_dir or Path(scratch)
            per_request, run_once = await MODES[args.mode](data_dir)
            if _untimed is not None:
                return
            print(f"{args.mode}: {per_request:.2f} us per request (best of {ROUNDS})")
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                _as_callback(run_once)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(int(os.environ.get("H2BOOKS_PROFILE_ROWS", "15")))

    asyncio.run(measure())
    return 0


_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


def _count_instructions(mode: str, app: str, request_hpack: str, data_dir: Path | None) -> int:
    """Instructions per request: the same set-up followed by 1 and by 5 untimed rounds,
    each run under cachegrind; the difference of the totals over 4 rounds' requests."""
    totals = []
    per_round = 0
    for rounds in (1, 5):
        argv = [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            sys.executable, __file__, mode, "--app", app, "--request-hpack", request_hpack,
            "--untimed-rounds", str(rounds),
        ]  # fmt: skip
        if data_dir is not None:
            argv += ["--data-dir", str(data_dir)]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
        total = _TOTAL.search(done.stderr)
        found = re.search(r"requests per round: (\d+)", done.stdout)
        if total is None or found is None:
            raise SystemExit(f"no count from cachegrind:\n{done.stderr[-2000:]}")
        totals.append(int(total.group(1).replace(",", "")))
        per_round = int(found.group(1))
    per_request = (totals[1] - totals[0]) / (4 * per_round)
    print(f"{mode}: {per_request:,.0f} instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
