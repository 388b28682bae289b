"""WebSocket echo of small messages over one connection: h2books against Uvicorn + websockets.

Both servers run the same raw ASGI echo app (below), started the way a user starts them:
`h2books serve ws_echo_app:app --interface asgi --http-port N` and
`uvicorn ws_echo_app:app --ws websockets --loop uvloop`, each from the directory that
holds the app, in a session of its own pinned to one core. The client is the same
raw-socket client for both, pinned to the other core: it sends pre-masked 16-byte text
frames over ws:// (HTTP/1.1 cleartext) and reads the echoes, either one at a time
(`serial`: round-trip bound) or 100 in flight (`pipelined`: server-bound).

The servers run in alternated rounds (h2books, uvicorn, h2books, ...; the order flips
each round) so that both see the same noise of a shared machine; each round opens a
new connection, warms it up and measures serial then pipelined. Printed per server and
mode: the median messages per second over the rounds with their range, the server's
CPU per message (user + system of its session, from /proc) likewise, and the median of
the per-round ratios h2books/uvicorn.

    flock /tmp/bench.lock python benchmarks/ws_echo.py [--rounds 7] [--serial 10000]
    # before/after: two trees of h2books side by side with Uvicorn
    flock /tmp/bench.lock python benchmarks/ws_echo.py --src /tmp/old/src --src src

`--awake` keeps the server's core from halting between messages (a `nice 19` busy loop
on it, which yields at once to the server; its CPU is not the server's). On a virtual
machine a halted core takes tens of µs to wake, so without it the serial figure rewards
a server that stays busy after answering (work after the write overlaps the client's
turn and the next message finds the core awake) more than a short path to the answer.
With it, the serial figure measures the path (as a kernel booted with idle=poll would).

`--instructions` counts each server's user-space instructions per message instead of
timing (valgrind's cachegrind; the machine's load does not move it):

    python benchmarks/ws_echo.py --instructions --serial 2000 --pipelined 20000 --src A --src B
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

from h2books.bench.processes import session_cpu_seconds  # noqa: E402

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

PAYLOAD = b"0123456789abcdef"
IN_FLIGHT = 100
MODES = ("serial", "pipelined")


@dataclass
class Server:
    name: str
    argv: list[str]  # {port} is filled in
    env: dict[str, str]
    rates: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + key + masked


def _connect(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with code {process.returncode}") from None
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
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"handshake refused: {head[:200]!r}")
    return sock


def _run(sock: socket.socket, messages: int, in_flight: int) -> float:
    frame = _frame(PAYLOAD)
    want = (len(PAYLOAD) + 2) * in_flight
    batch = frame * in_flight
    started = time.perf_counter()
    done = 0
    while done < messages:
        sock.sendall(batch)
        got = 0
        while got < want:
            got += len(sock.recv(65536))
        done += in_flight
    return time.perf_counter() - started


@contextmanager
def _running(server: Server, core: int, cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    argv = ["taskset", "-c", str(core), *(a.replace("{port}", str(port)) for a in server.argv)]
    process = subprocess.Popen(
        argv, cwd=cwd, env={**os.environ, **server.env}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process, port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure(server: Server, core: int, cwd: Path, counts: dict[str, int]) -> None:
    with _running(server, core, cwd) as (process, port):
        session = process.pid  # a session of its own: the server and any child it forks
        sock = _connect(port, process)
        with sock:
            _run(sock, 2000, 1)  # warm up
            _run(sock, 2000, IN_FLIGHT)
            for mode in MODES:
                in_flight = 1 if mode == "serial" else IN_FLIGHT
                cpu = session_cpu_seconds(session, precise=True)
                elapsed = _run(sock, counts[mode], in_flight)
                used = session_cpu_seconds(session, precise=True) - cpu
                server.rates[mode].append(counts[mode] / elapsed)
                server.cpu[mode].append(used / counts[mode] * 1e6)


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def report(servers: list[Server]) -> None:
    reference = servers[-1]  # uvicorn
    width = max(len(s.name) for s in servers)
    for mode in MODES:
        print(f"\n{mode} ({'1 message' if mode == 'serial' else IN_FLIGHT} in flight)")
        for server in servers:
            line = (
                f"  {server.name:{width}}  {_spread(server.rates[mode], ',.0f'):>24} msg/s"
                f"   CPU {_spread(server.cpu[mode], '.1f'):>18} µs/msg"
            )
            if server is not reference:
                pairs = zip(server.rates[mode], reference.rates[mode], strict=True)
                ratios = [ours / theirs for ours, theirs in pairs]
                line += f"   ratio {_spread(ratios, '.2f')}"
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serial", type=int, default=10000, help="messages per serial run")
    parser.add_argument("--pipelined", type=int, default=50000, help="per pipelined run")
    parser.add_argument(
        "--src", action="append", type=Path,
        help="an h2books src directory to run (repeatable; default this tree's)",
    )  # fmt: skip
    parser.add_argument("--awake", action="store_true", help="keep the server's core awake")
    parser.add_argument(
        "--instructions", action="store_true",
        help="count instructions per message instead (valgrind; try --serial 2000"
        " --pipelined 20000)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.instructions:
        _count_instructions(args)
        return
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {client_core})
    spinner = None
    if args.awake:
        spin = ["nice", "-n", "19", "taskset", "-c", str(server_core)]
        spinner = subprocess.Popen([*spin, sys.executable, "-c", "while True: pass"])
    try:
        _compare(args, server_core, client_core)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def _servers(sources: list[Path], workdir: Path) -> list[Server]:
    """One h2books per source tree, then Uvicorn (the reference, last)."""
    servers = [
        Server(
            "h2books" if len(sources) == 1 else f"h2books {src.parent.name}",
            [
                sys.executable, "-m", "h2books", "serve", "ws_echo_app:app",
                "--interface", "asgi", "--http-port", "{port}", "--port", str(_free_port()),
                "--data-dir", str(workdir / "data"), "--no-access-log",
                "--log-level", "warning",
            ],
            {"PYTHONPATH": str(src)},
        )
        for src in sources
    ]  # fmt: skip
    servers.append(
        Server(
            "uvicorn + websockets",
            [
                sys.executable, "-m", "uvicorn", "ws_echo_app:app", "--port", "{port}",
                "--ws", "websockets", "--loop", "uvloop", "--log-level", "warning",
                "--no-access-log",
            ],
            {},
        )
    )  # fmt: skip
    return servers


def _compare(args: argparse.Namespace, server_core: int, client_core: int) -> None:
    sources = [path.resolve() for path in args.src or [SRC]]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "ws_echo_app.py").write_text(APP)
        servers = _servers(sources, workdir)
        counts = {"serial": args.serial, "pipelined": args.pipelined}
        print(
            f"server on core {server_core}{' (kept awake)' if args.awake else ''},"
            f" client on core {client_core};"
            f" {args.rounds} rounds, {args.serial} serial + {args.pipelined} pipelined"
            f" {len(PAYLOAD)}-byte text messages per round and server"
        )
        for round_number in range(args.rounds):
            order = servers if round_number % 2 == 0 else servers[::-1]
            for server in order:
                measure(server, server_core, workdir, counts)
            print(f"round {round_number + 1} done", file=sys.stderr, flush=True)
    report(servers)


def _instructions(server: Server, workdir: Path, messages: int, in_flight: int) -> int:
    """The server's user-space instructions (cachegrind) over its whole life: start, a
    warm-up, `messages` more, and the end."""
    port = _free_port()
    argv = [a.replace("{port}", str(port)) for a in server.argv]
    valgrind = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
    ]
    process = subprocess.Popen(
        [*valgrind, *argv], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, **server.env, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    try:
        with _connect(port, process) as sock:
            _run(sock, 5 * in_flight if in_flight > 1 else 500, in_flight)
            if messages:
                _run(sock, messages, in_flight)
        time.sleep(0.5)  # the server sees the end of the connection
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    found = re.search(r"I\s+refs:\s+([\d,]+)", err.decode(errors="replace"))
    if found is None:
        raise SystemExit(f"no count from cachegrind:\n{err.decode(errors='replace')[-2000:]}")
    return int(found.group(1).replace(",", ""))


def _count_instructions(args: argparse.Namespace) -> None:
    """Instructions per message instead of time: each server runs twice under cachegrind,
    with and without the measured messages after the same warm-up, and the difference is
    divided by their number. It does not move with the machine's load."""
    sources = [path.resolve() for path in args.src or [SRC]]
    counts = {"serial": args.serial, "pipelined": args.pipelined}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "ws_echo_app.py").write_text(APP)
        for server in _servers(sources, workdir):
            for mode in MODES:
                in_flight = 1 if mode == "serial" else IN_FLIGHT
                base = _instructions(server, workdir, 0, in_flight)
                total = _instructions(server, workdir, counts[mode], in_flight)
                per_message = (total - base) / counts[mode]
                print(f"  {server.name:24} {mode:9} {per_message:9,.0f} instructions per message")


if __name__ == "__main__":
    main()
