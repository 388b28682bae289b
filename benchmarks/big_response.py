"""One large response on one connection: HTTP/2 (one stream) against HTTP/1.1, same server.

    python benchmarks/big_response.py                      # 64 MiB, 5 runs per protocol
    python benchmarks/big_response.py --size 16777216 --runs 9 --client curl

Starts ``h2books serve --app h2books.bench.payload:create_payload_app`` pinned to core 0,
then fetches ``/bytes/SIZE`` with the client pinned to core 1, alternating h2 and h1 so
that both see the same machine noise, after one unrecorded warm-up of each. Prints the
median and min-max transfer time and rate per protocol, the server's and the client's
CPU per transfer, and h2's rate as a share of h1's (issue 9 asks for >= 90%).

Clients: ``h2load -n 1 -c 1`` (its default windows, 2^30-1, and max frame size, 16 KiB,
so flow control cannot be what limits it) or ``curl`` (its "time_total" minus
"time_appconnect": the transfer without the TCP and TLS handshakes).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from h2books.bench.h2load import parse_h2load_output  # noqa: E402
from h2books.bench.processes import session_cpu_seconds  # noqa: E402

DEFAULT_SIZE = 64 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None and shutil.which("taskset") else []


def start_server(
    src: Path,
    data_dir: Path,
    core: int | None,
    *app: str,
    wrapper: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """`h2books serve` from the tree at `src` (a src directory) on a free port, pinned
    (or run under `wrapper`, such as valgrind, instead), with `env` added to ours."""
    port = _free_port()
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(src.resolve())}
    argv = [
        *(wrapper if wrapper is not None else _pin(core)),
        sys.executable,
        "-m",
        "h2books",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        *app,
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return process, port


@contextlib.contextmanager
def running_server(
    data_dir: Path, core: int | None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    process, port = start_server(
        SRC, data_dir, core, "--app", "h2books.bench.payload:create_payload_app"
    )
    try:
        _wait_for(port, data_dir / "tls" / "ca.pem", process)
        yield process, port
    finally:
        stop_server(process)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's session (a graceful stop), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for(
    port: int,
    ca: Path,
    process: subprocess.Popen[bytes],
    timeout: float = 60,
    path: str = "/bytes/1",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        if ca.exists():
            context = ssl.create_default_context(cafile=str(ca))
            connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
            try:
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


def fetch_h2load(url: str, http1: bool, size: int, core: int | None) -> float:
    argv = [*_pin(core), "h2load", "-n", "1", "-c", "1", "-m", "1"]
    if http1:
        argv.append("--h1")
    output = subprocess.run([*argv, url], capture_output=True, text=True, timeout=120).stdout
    report = parse_h2load_output(output)
    if not report.all_succeeded or report.data_bytes < size:
        raise SystemExit(f"h2load run failed: {report.problem() or 'short body'}\n{output}")
    return report.duration


def fetch_curl(url: str, http1: bool, size: int, core: int | None, ca: Path) -> float:
    argv = [*_pin(core), "curl", "-sS", "-o", "/dev/null", "--cacert", str(ca)]
    argv.append("--http1.1" if http1 else "--http2")
    argv += ["-w", "%{http_version} %{size_download} %{time_appconnect} %{time_total}", url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    version, downloaded, appconnect, total = out.split()
    if int(downloaded) != size or version != ("1.1" if http1 else "2"):
        raise SystemExit(f"curl run failed: {out}")
    return float(total) - float(appconnect)


def _children_cpu_seconds() -> float:
    """User + system CPU of the reaped clients so far (the client runs to completion)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--client", choices=("h2load", "curl"), default="h2load")
    parser.add_argument("--data-dir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args(argv)
    pinned = not args.no_pin and (os.cpu_count() or 1) >= 2
    server_core, client_core = (0, 1) if pinned else (None, None)
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        process, port = stack.enter_context(running_server(data_dir, server_core))
        url = f"https://127.0.0.1:{port}/bytes/{args.size}"
        ca = data_dir / "tls" / "ca.pem"

        def fetch(http1: bool) -> float:
            if args.client == "curl":
                return fetch_curl(url, http1, args.size, client_core, ca)
            return fetch_h2load(url, http1, args.size, client_core)

        times: dict[str, list[float]] = {"h2": [], "h1": []}
        cpu: dict[str, list[float]] = {"h2": [], "h1": []}
        client_cpu: dict[str, list[float]] = {"h2": [], "h1": []}
        fetch(False)
        fetch(True)
        for _ in range(args.runs):
            for name in ("h2", "h1"):
                before = session_cpu_seconds(process.pid, precise=True)
                client_before = _children_cpu_seconds()
                times[name].append(fetch(name == "h1"))
                cpu[name].append(session_cpu_seconds(process.pid, precise=True) - before)
                client_cpu[name].append(_children_cpu_seconds() - client_before)
    mib = args.size / (1 << 20)
    print(f"{mib:g} MiB from {url.rsplit('/', 2)[0]}/..., client {args.client}, {args.runs} runs")
    rates = {}
    for name in ("h2", "h1"):
        median = statistics.median(times[name])
        rates[name] = mib / median
        print(
            f"  {name}: median {median * 1e3:7.1f} ms ({rates[name]:6.0f} MiB/s), "
            f"min-max {min(times[name]) * 1e3:.1f}-{max(times[name]) * 1e3:.1f} ms, "
            f"server CPU {statistics.median(cpu[name]) * 1e3:.0f} ms, "
            f"client CPU {statistics.median(client_cpu[name]) * 1e3:.0f} ms per response"
        )
    print(f"  h2 rate / h1 rate: {rates['h2'] / rates['h1']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
