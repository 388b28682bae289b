"""WebSocket echo of small messages over one connection: h2books against Uvicorn + websockets.

Both servers run the same raw ASGI echo app (below) in a process of their own, pinned to
one core; the client is the same raw-socket client for both, pinned to another: it sends
pre-masked 16-byte text frames over ws:// (HTTP/1.1 cleartext) and reads the echoes,
either one at a time (`serial`: round-trip bound) or 100 in flight (`pipelined`:
server-bound). It prints messages per second and the server's CPU per message (from
/proc, user + system).

    flock /tmp/bench.lock python benchmarks/ws_echo.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

APP = """
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].replace("startup", "startup.complete")
                kind = kind.replace("shutdown", "shutdown.complete")
                await send({"type": kind})
                if message["type"].endswith("shutdown"):
                    return
        return
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})
"""

H2BOOKS = """
import asyncio, sys
sys.path.insert(0, {bench!r})
from ws_echo_app import app
from h2books.http import Response
from h2books.interfaces import ServerInterface
from h2books.interfaces.asgi_websocket import serve_websocket
from h2books.server.config import ServerConfig
from h2books.server.server import Server

class Interface(ServerInterface):
    def handle(self, exchange):
        if exchange.upgrade != b"websocket":
            exchange.respond(Response(404))
            return
        path, _, query = exchange.target.partition(b"?")
        scope = {{"type": "http", "http_version": exchange.http_version,
                 "scheme": exchange.scheme, "path": path.decode(), "raw_path": path,
                 "query_string": query, "root_path": "", "headers": exchange.headers,
                 "client": exchange.client, "server": None, "state": {{}}, "extensions": {{}}}}
        serve_websocket(app, exchange, scope)

async def main():
    config = ServerConfig(port=0, http_port={port}, access_log=False)
    server = Server(config, Interface(), None)
    await server.start(http_socket=None)
    print("ready", flush=True)
    await server.serve_until_stopped()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _connect(port: int) -> socket.socket:
    deadline = time.monotonic() + 20
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _run(sock: socket.socket, messages: int, in_flight: int) -> float:
    payload = b"0123456789abcdef"
    frame = _frame(payload)
    echo = len(payload) + 2
    batch = frame * in_flight
    started = time.perf_counter()
    done = 0
    while done < messages:
        sock.sendall(batch)
        want = echo * in_flight
        got = 0
        while got < want:
            got += len(sock.recv(65536))
        done += in_flight
    return time.perf_counter() - started


def measure(name: str, command: list[str], port: int, messages: int) -> None:
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{HERE}"}
    proc = subprocess.Popen(
        ["taskset", "-c", "1", *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        sock = _connect(port)
        with sock:
            _run(sock, 2000, 1)  # warm up
            for mode, in_flight in (("serial", 1), ("pipelined", 100)):
                cpu = _cpu_seconds(proc.pid)
                elapsed = _run(sock, messages, in_flight)
                used = _cpu_seconds(proc.pid) - cpu
                print(
                    f"{name:28} {mode:9} {messages / elapsed:10,.0f} msg/s"
                    f"   server CPU {used / messages * 1e6:6.1f} µs/msg"
                )
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    (HERE / "ws_echo_app.py").write_text(APP)
    try:
        port = _free_port()
        script = H2BOOKS.format(bench=str(HERE), port=port)
        measure("h2books", [sys.executable, "-c", script], port, args.messages)
        port = _free_port()
        uvicorn = [
            sys.executable, "-m", "uvicorn", "ws_echo_app:app", "--port", str(port),
            "--ws", "websockets", "--loop", "uvloop", "--log-level", "warning",
            "--app-dir", str(HERE),
        ]  # fmt: skip
        measure("uvicorn + websockets", uvicorn, port, args.messages)
    finally:
        (HERE / "ws_echo_app.py").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
