"""Two versions of h2books compared by the instructions the server executes per request.

    git worktree add --detach /tmp/old HEAD~5
    python benchmarks/instructions.py /tmp/old/src src                 # every workload
    python benchmarks/instructions.py /tmp/old/src src --workloads h2-10c
    python benchmarks/instructions.py /tmp/old/src src --app wsgi      # or asgi

On a shared machine whose speed drifts by tens of percent from one minute to the next,
req/s comparisons (`compare_trees.py`) need many alternated rounds to see a 5% change.
An instruction count does not drift. Each tree's bookstore runs under valgrind's
callgrind (`apt-get install valgrind`), with PYTHONHASHSEED=0 so that both hash strings
alike. h2load sends each workload twice, `SMALL` then `LARGE` requests over the
workload's number of connections, and the server's counter is dumped after each load
(`callgrind_control --dump`). Instructions per request are
(Ir(LARGE) - Ir(SMALL)) / (LARGE - SMALL): the connections' set-up and TLS handshakes,
the same in both loads, cancel out. `REPEATS` such pairs are made per workload; the
median and the range are printed. Pairs differ by a few percent, because how many
requests one read brings (and so how far the per-read work is shared) depends on timing:
compare a tree with itself (`src src`) to see the spread before reading a ratio.

Both trees are measured at once, each server and its h2load sharing the two cores:
valgrind's counts do not depend on the machine's speed (only the once-a-second Date tick
does, a few hundred instructions per second of valgrind time).

What it does not see: cache misses, system calls and the kernel's share. A change in
memory layout or in the number of writes shows in `compare_trees.py` only.

A peer of the benchmark can stand in for the old tree, serving the same app the same way
`h2books bench` starts it (its whole process counts: TLS, event loop, threads):

    python benchmarks/instructions.py peer:uvicorn-httptools src --app asgi --workloads h1-10c

Only peers that serve in the process they start can be counted this way (Uvicorn); Granian
and Gunicorn serve from a child process, which the dump of the parent would not see.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from big_response import start_server, stop_server
from compare_trees import APPS, BOOKS, WORKLOADS, _wait_for_book, make_catalogue

from h2books.bench.h2load import parse_h2load_output, write_uri_list
from h2books.bench.peers.catalog import DATA_DIR_VARIABLE
from h2books.bench.servers import BenchPaths, child_environment, free_port, servers_for
from h2books.certs import ensure_certificates

SRC = Path(__file__).resolve().parent.parent / "src"
# Peers that serve in the very process they start (callgrind_control dumps that pid).
SINGLE_PROCESS_PEERS = frozenset({"uvicorn", "uvicorn-httptools"})

SMALL, LARGE = 1000, 11000
REPEATS = 3  # (SMALL, LARGE) pairs per workload, unless --repeats says
_TOTALS = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)
# The servers started so far: main() stops them all, whatever the measuring threads do.
_servers: list[subprocess.Popen[bytes]] = []
_servers_lock = threading.Lock()


def _load(port: int, workload: list[str], count: int, uris: Path) -> None:
    argv = ["h2load", *_with_count(workload, count), "-i", str(uris)]
    output = subprocess.run(argv, capture_output=True, text=True, timeout=900).stdout
    report = parse_h2load_output(output)
    if not report.all_succeeded:
        raise SystemExit(f"failed requests against port {port}:\n{output}")


def _with_count(workload: list[str], count: int) -> list[str]:
    argv = list(workload)
    argv[argv.index("-n") + 1] = str(count)
    return argv


def _dump(pid: int, out_dir: Path) -> int:
    """Instructions since the last dump: callgrind writes a numbered file per dump."""
    before = set(out_dir.glob("cg.out.*"))
    done = subprocess.run(
        ["callgrind_control", "--dump", str(pid)], capture_output=True, text=True, timeout=120
    )
    # callgrind_control exits 0 even when it finds no such process: read what it says.
    if done.returncode or "Error" in done.stdout + done.stderr:
        raise SystemExit(f"callgrind_control could not dump pid {pid}: {done.stdout}{done.stderr}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in set(out_dir.glob("cg.out.*")) - before:
            match = _TOTALS.search(path.read_bytes())
            if match:
                return int(match.group(1))
        time.sleep(0.2)
    raise SystemExit(f"callgrind did not dump for pid {pid}")


def _start_peer(
    name: str, app_set: str, data_dir: Path, wrapper: list[str]
) -> tuple[subprocess.Popen[bytes], int]:
    """The bench's peer `name` serving `app_set`'s bookstore, as `h2books bench` starts it."""
    if name not in SINGLE_PROCESS_PEERS:
        raise SystemExit(
            f"peer {name!r} serves from a child process: only "
            f"{', '.join(sorted(SINGLE_PROCESS_PEERS))} can be counted"
        )
    spec = servers_for(app_set).get(name)
    if spec is None:
        known = ", ".join(servers_for(app_set))
        raise SystemExit(f"no peer {name!r} for --app {app_set} (known: {known})")
    make_catalogue(SRC, data_dir)
    tls = ensure_certificates(data_dir / "tls")
    port = free_port()
    env = {**child_environment(), DATA_DIR_VARIABLE: str(data_dir)}
    argv = [*wrapper, *spec.command(port, BenchPaths(data_dir, tls.cert, tls.key, tls.ca_cert))]
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return process, port


def measure(
    server: str, workloads: list[str], repeats: int, app_set: str
) -> dict[str, list[float]]:
    """Instructions per request of each workload (one figure per pair of loads), on one
    server run under callgrind (its threads included: a WSGI app runs in a pool). `server`
    is a tree's src directory, or ``peer:NAME``."""
    app = APPS[app_set]
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = Path(scratch, "cg")
        out_dir.mkdir()
        wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out"]
        data_dir = Path(scratch, "data")
        with _servers_lock:  # registered before main() could look
            if server.startswith("peer:"):
                process, port = _start_peer(server[5:], app_set, data_dir, wrapper)
            else:
                src = Path(server)
                # The benchmark's ASGI and WSGI apps serve the catalogue of this directory
                # (native serve makes it; `catalog` first for the others).
                if app:
                    make_catalogue(src, data_dir)
                process, port = start_server(
                    src,
                    data_dir,
                    None,
                    *app,
                    wrapper=wrapper,
                    env={DATA_DIR_VARIABLE: str(data_dir)},
                )
            _servers.append(process)
        try:
            # Start-up under valgrind takes 20-60 s (imports and the generated catalogue).
            _wait_for_book(port, data_dir, process, timeout=600)
            uris = write_uri_list(
                Path(scratch, "uris.txt"),
                f"https://127.0.0.1:{port}",
                [str(i) for i in range(1, BOOKS + 1)],
            )
            per_request: dict[str, list[float]] = {}
            for name in workloads:
                workload = WORKLOADS[name]
                _load(port, workload, SMALL // 2, uris)  # warm-up: caches, the Date tick
                samples = per_request[name] = []
                for _ in range(repeats):
                    _dump(process.pid, out_dir)
                    _load(port, workload, SMALL, uris)
                    small = _dump(process.pid, out_dir)
                    _load(port, workload, LARGE, uris)
                    large = _dump(process.pid, out_dir)
                    samples.append((large - small) / (LARGE - SMALL))
            return per_request
        finally:
            stop_server(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the src directory of the old tree, or peer:NAME")
    parser.add_argument("new", help="the src directory of the new tree, or peer:NAME")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=REPEATS, help="pairs of loads per workload")
    parser.add_argument("--app", choices=APPS, default="native", help="the interface served")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install valgrind nghttp2-client)")
    os.environ.setdefault("PYTHONHASHSEED", "0")  # the servers inherit it
    workloads = args.workloads.split(",")
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        old_run = pool.submit(measure, args.old, workloads, args.repeats, args.app)
        new_run = pool.submit(measure, args.new, workloads, args.repeats, args.app)
        old, new = old_run.result(), new_run.result()
    finally:
        # On a failure or Ctrl+C, the other tree's server must not outlive us: stopping it
        # also ends the load its thread is waiting on.
        with _servers_lock:
            for process in _servers:
                if process.poll() is None:
                    with contextlib.suppress(OSError):
                        stop_server(process)
        pool.shutdown(wait=False, cancel_futures=True)
    for name in workloads:
        old_median, new_median = statistics.median(old[name]), statistics.median(new[name])
        print(
            f"{name:7} old {old_median:9,.0f} instructions/req "
            f"({min(old[name]):,.0f}-{max(old[name]):,.0f}) | "
            f"new {new_median:9,.0f} ({min(new[name]):,.0f}-{max(new[name]):,.0f}) | "
            f"new/old {new_median / old_median:.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
