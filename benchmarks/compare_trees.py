"""Two versions of h2books side by side: the h2load workloads, runs alternated.

    git worktree add --detach /tmp/old HEAD~5               # the tree to compare with
    python benchmarks/compare_trees.py /tmp/old/src src --rounds 9
    python benchmarks/compare_trees.py /tmp/old/src src --app asgi   # or wsgi

Starts the bookstore from each `src` directory (both servers pinned to core 0, only one
loaded at a time), then for each workload runs h2load (pinned to core 1) against old,
new, old, new... so that both see the same noise of the machine, minute by minute.
Prints, per workload, the median req/s and server CPU per request of each tree, and the
median of the per-round ratios new/old: on a shared machine, whose speed drifts by tens
of percent from one minute to the next, that ratio is the figure to quote.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from big_response import _pin, _wait_for, start_server, stop_server

from h2books.bench.h2load import parse_h2load_output, write_uri_list
from h2books.bench.peers.catalog import DATA_DIR_VARIABLE
from h2books.bench.processes import session_cpu_seconds

# `--app`: the bookstore through each interface (the benchmark's ASGI and WSGI apps).
APPS = {
    "native": [],
    "asgi": ["h2books.bench.peers.asgi_entry:app", "--interface", "asgi"],
    "wsgi": ["h2books.bench.peers.wsgi_entry:app", "--interface", "wsgi"],
}

WORKLOADS = {
    "h2-1c": ["-n", "30000", "-c", "1", "-m", "100"],
    "h2-10c": ["-n", "30000", "-c", "10", "-m", "100"],
    "h1-10c": ["--h1", "-n", "30000", "-c", "10", "-m", "1"],
    "h1-1c": ["--h1", "-n", "10000", "-c", "1", "-m", "1"],
}
BOOKS = 3000


def start(
    src: Path, data_dir: Path, servers: contextlib.ExitStack, app: list[str]
) -> tuple[subprocess.Popen[bytes], int]:
    """The bookstore of the tree at `src` (through `app`'s interface), stopped when
    `servers` closes (even if it never answers)."""
    if app:
        # The benchmark's ASGI and WSGI apps serve the catalogue of this directory
        # (native serve makes it; `catalog` first for the others).
        make_catalogue(src, data_dir)
    process, port = start_server(src, data_dir, 0, *app, env={DATA_DIR_VARIABLE: str(data_dir)})
    servers.callback(stop_server, process)
    _wait_for_book(port, data_dir, process)
    return process, port


def make_catalogue(src: Path, data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src.resolve())}
    subprocess.run(
        [sys.executable, "-m", "h2books", "catalog", "reset", "--data-dir", str(data_dir)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )


def _wait_for_book(
    port: int, data_dir: Path, process: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    _wait_for(port, data_dir / "tls" / "ca.pem", process, timeout, path="/book?id=1")


def run(port: int, pid: int, workload: list[str], uris: Path) -> tuple[float, float]:
    """(req/s, server µs per request) of one h2load run."""
    cpu_before = session_cpu_seconds(pid, precise=True)
    output = subprocess.run(
        [*_pin(1), "h2load", *workload, "-i", str(uris)],
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    cpu = session_cpu_seconds(pid, precise=True) - cpu_before
    report = parse_h2load_output(output)
    if not report.all_succeeded:
        raise SystemExit(f"failed requests against port {port}:\n{output}")
    return report.requests_per_second, cpu / report.succeeded * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="the src directory of the old tree")
    parser.add_argument("new", type=Path, help="the src directory of the new tree")
    parser.add_argument("--rounds", type=int, default=7, help="alternated runs per workload")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--app", choices=APPS, default="native", help="the interface served")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as servers:
        old_dir, new_dir = Path(scratch, "old"), Path(scratch, "new")
        old, old_port = start(args.old, old_dir, servers, APPS[args.app])
        new, new_port = start(args.new, new_dir, servers, APPS[args.app])
        for name in args.workloads.split(","):
            workload = WORKLOADS[name]
            uris = {
                port: write_uri_list(
                    Path(scratch, f"uris-{port}.txt"),
                    f"https://127.0.0.1:{port}",
                    [str(i) for i in range(1, BOOKS + 1)],
                )
                for port in (old_port, new_port)
            }
            for port, process in ((old_port, old), (new_port, new)):
                run(port, process.pid, workload, uris[port])  # warm-up, not recorded
            rates: dict[str, list[float]] = {"old": [], "new": []}
            cpus: dict[str, list[float]] = {"old": [], "new": []}
            ratios: list[float] = []
            for _ in range(args.rounds):
                for label, port, process in (("old", old_port, old), ("new", new_port, new)):
                    rate, cpu = run(port, process.pid, workload, uris[port])
                    rates[label].append(rate)
                    cpus[label].append(cpu)
                ratios.append(rates["new"][-1] / rates["old"][-1])
            print(
                f"{name:7} old {statistics.median(rates['old']):9,.0f} req/s "
                f"{statistics.median(cpus['old']):5.1f} µs/req | "
                f"new {statistics.median(rates['new']):9,.0f} req/s "
                f"{statistics.median(cpus['new']):5.1f} µs/req | "
                f"new/old {statistics.median(ratios):.3f} "
                f"({min(ratios):.2f}-{max(ratios):.2f})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
