"""Python cost per request of a minimal WSGI app, in process (no sockets, no TLS).

    python benchmarks/inprocess_wsgi.py wsgi-h2-server   # h2 core + WSGI thread pool
    python benchmarks/inprocess_wsgi.py wsgi-h1-server   # h1 core + WSGI thread pool
    python benchmarks/inprocess_wsgi.py wsgi-h2-server --threads 4

The same recording transport and request shapes as `inprocess.py` (h2: reads of 100
requests, like h2load -m100; h1: one request per read, the next sent when the answer is
out, like one h2load connection). The app runs in the server's thread pool, so a figure
is the process's CPU time (every thread) per request, and wall time beside it; each is
the best of 7 rounds. Compare versions in the same minute, not as absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inprocess import Transport, _frame

from h2books.interfaces.wsgi import WsgiInterface
from h2books.protocol.hpack import Encoder
from h2books.server.adapters.h1 import H1ServerProtocol
from h2books.server.adapters.h2 import H2ServerProtocol
from h2books.server.clock import WallClock
from h2books.server.config import ServerConfig
from h2books.server.runner import install_event_loop_policy
from h2books.server.state import ServerState

ROUNDS = 7
BODY = b'{"id": "17", "title": "A title", "author": "An Author"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The smallest honest WSGI app: a fixed JSON body, like the bookstore's /book."""
    start_response("200 OK", HEADERS)
    return [BODY]


class WaitingTransport(Transport):
    """Sets `done` when a write leaves the protocol with no exchange left to answer."""

    def __init__(self, finished: Callable[[], bool]) -> None:
        super().__init__()
        self.finished = finished
        self.done = asyncio.Event()

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.finished():
            self.done.set()


async def _best(run_once: Callable[[], Awaitable[None]], count: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per request: the best of ROUNDS rounds of `count` requests."""
    cpu = wall = float("inf")
    for _ in range(ROUNDS):
        started, started_cpu = time.perf_counter(), time.process_time()
        await run_once()
        wall = min(wall, (time.perf_counter() - started) / count * 1e6)
        cpu = min(cpu, (time.process_time() - started_cpu) / count * 1e6)
    return cpu, wall


async def _interface(threads: int) -> tuple[WsgiInterface, ServerState]:
    config = ServerConfig(access_log=False, wsgi_threads=threads)
    interface = WsgiInterface(app, config)
    await interface.startup()
    loop = asyncio.get_running_loop()
    return interface, ServerState(config, interface.handle, loop, None, WallClock())


async def wsgi_h2_server(threads: int) -> tuple[float, float]:
    interface, state = await _interface(threads)
    protocol = H2ServerProtocol(state, "https")
    transport = WaitingTransport(lambda: not protocol._exchanges)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    settings = _frame(0x4, 0, 0, struct.pack(">HI", 0x4, (1 << 31) - 1))
    window = _frame(0x8, 0, 0, struct.pack(">I", (1 << 31) - 1 - 65535))
    protocol.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + window)
    encoder = Encoder()
    batches: list[bytes] = []
    stream_id = 1
    for batch in range((ROUNDS + 1) * 30):
        frames = []
        for j in range(100):
            block = encoder.encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"https"),
                    (b":authority", b"127.0.0.1:8443"),
                    (b":path", b"/book?id=%d" % ((batch * 100 + j) % 3000 + 1)),
                    (b"user-agent", b"h2load nghttp2/1.52.0"),
                    (b"accept", b"*/*"),
                ]
            )
            frames.append(_frame(0x1, 0x4 | 0x1, stream_id, block))
            stream_id += 2
        batches.append(b"".join(frames))
    feed = iter(batches)

    async def run_once() -> None:
        for _ in range(30):
            transport.done.clear()
            protocol.data_received(next(feed))
            await transport.done.wait()

    try:
        return await _best(run_once, 3000)
    finally:
        await interface.shutdown()


async def wsgi_h1_server(threads: int) -> tuple[float, float]:
    interface, state = await _interface(threads)
    protocol = H1ServerProtocol(state, "https")
    transport = WaitingTransport(lambda: not protocol._queue)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    requests = [
        b"GET /book?id=%d HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
        b"User-Agent: h2load nghttp2/1.52.0\r\nAccept: */*\r\n\r\n" % i
        for i in range(1, 3001)
    ]
    count = 5000

    async def run_once() -> None:
        for i in range(count):
            transport.done.clear()
            protocol.data_received(requests[i % 3000])
            await transport.done.wait()
        assert transport.last.startswith(b"HTTP/1.1 200 OK\r\n"), transport.last[:80]

    try:
        return await _best(run_once, count)
    finally:
        await interface.shutdown()


MODES = {"wsgi-h2-server": wsgi_h2_server, "wsgi-h1-server": wsgi_h1_server}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--threads", type=int, default=ServerConfig().wsgi_threads)
    args = parser.parse_args(argv)
    loop_name = install_event_loop_policy()  # uvloop, as the server runs
    cpu, wall = asyncio.run(MODES[args.mode](args.threads))
    print(
        f"{args.mode} ({args.threads} threads, {loop_name}): {cpu:.2f} us CPU, {wall:.2f} us wall "
        f"per request (best of {ROUNDS})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
