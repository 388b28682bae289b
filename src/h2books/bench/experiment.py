"""The post's experiment: each client crawls each server, over HTTP/1.1 and HTTP/2.

A crawl is the post's: ``GET /``, then ``GET /book?id=N`` for every book, all
checked. Each (server, client, protocol) cell is repeated and reported as the
median and min-max of its wall time, with the client's CPU and the server's.

The order: one server at a time (started once, warmed up with an unrecorded
crawl over each protocol, stopped at the end); within it, rounds that run every
client once, so that slow drift of a noisy machine spreads over all cells
instead of landing on one. A server that fails to start, dies or stalls turns
its cells into marked failures; the run goes on with the next.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from h2books.bench.h2load import (
    H2loadParseError,
    h2load_command,
    parse_h2load_output,
    write_uri_list,
)
from h2books.bench.names import DEFAULT_CLIENT_KEYS
from h2books.bench.processes import Pinning, run_bounded
from h2books.bench.progress import Progress, no_progress
from h2books.bench.servers import (
    RunningServer,
    ServerSpec,
    ServerStartError,
    child_environment,
    start_server,
)
from h2books.bench.stats import Spread, ratio, spread
from h2books.bench.workspace import Workspace

__all__ = [
    "ALL_CLIENTS",
    "DEFAULT_CLIENTS",
    "POST_BASELINE",
    "Cell",
    "ClientSpec",
    "CrawlRun",
    "ExperimentConfig",
    "ExperimentResult",
    "run_experiment",
]

# The post's setup: its Twisted server, requests over HTTP/1.1, hyper (now httpx) over HTTP/2.
POST_SERVER = "twisted"
POST_BASELINE = {"h1": "requests", "h2": "httpx"}
HTTP_VERSIONS = {"h1": ("HTTP/1.1", "http/1.1"), "h2": ("HTTP/2", "h2")}


@dataclass(frozen=True, slots=True)
class ClientSpec:
    name: str  # ours | requests | httpx | h2load
    protocol: str  # h1 | h2

    @property
    def key(self) -> str:
        return f"{self.name}-{self.protocol}"

    @property
    def label(self) -> str:
        return f"{self.name} {'HTTP/2' if self.protocol == 'h2' else 'HTTP/1.1'}"


ALL_CLIENTS: dict[str, ClientSpec] = {
    spec.key: spec
    for spec in (
        ClientSpec("ours", "h1"),
        ClientSpec("ours", "h2"),
        ClientSpec("requests", "h1"),
        ClientSpec("httpx", "h1"),
        ClientSpec("httpx", "h2"),
        ClientSpec("h2load", "h1"),
        ClientSpec("h2load", "h2"),
    )
}
DEFAULT_CLIENTS = DEFAULT_CLIENT_KEYS


@dataclass(slots=True)
class CrawlRun:
    ok: bool
    wall: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    requests: int = 0
    server_cpu: float = 0.0  # seconds the server spent during the run
    http_version: str = ""
    error: str = ""

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def as_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": self.error}
        return {
            "ok": True,
            "wall_s": round(self.wall, 6),
            "user_s": round(self.user, 6),
            "sys_s": round(self.sys, 6),
            "requests": self.requests,
            "server_cpu_s": round(self.server_cpu, 3),
            "http_version": self.http_version,
        }


@dataclass(slots=True)
class Cell:
    server: str
    client: ClientSpec
    runs: list[CrawlRun] = field(default_factory=list)
    note: str = ""  # why it has fewer runs than asked (not started, stalled, ...)

    @property
    def ok_runs(self) -> list[CrawlRun]:
        return [run for run in self.runs if run.ok]

    @property
    def failed(self) -> bool:
        return not self.ok_runs

    @property
    def errors(self) -> list[str]:
        found = [run.error for run in self.runs if not run.ok]
        return ([self.note] if self.note else []) + found

    def wall(self) -> Spread | None:
        return spread(run.wall for run in self.ok_runs)

    def client_cpu_us(self) -> Spread | None:
        return spread(1e6 * run.cpu / run.requests for run in self.ok_runs if run.requests)

    def server_cpu_us(self) -> Spread | None:
        return spread(1e6 * run.server_cpu / run.requests for run in self.ok_runs if run.requests)

    def median_of(self, attribute: str) -> float | None:
        values = spread(getattr(run, attribute) for run in self.ok_runs)
        return values.median if values else None

    def as_dict(self) -> dict[str, Any]:
        wall, client, server = self.wall(), self.client_cpu_us(), self.server_cpu_us()
        requests = self.ok_runs[0].requests if self.ok_runs else 0
        return {
            "server": self.server,
            "client": self.client.name,
            "protocol": self.client.protocol,
            "ok": not self.failed,
            "runs_ok": len(self.ok_runs),
            "runs": [run.as_dict() for run in self.runs],
            "errors": self.errors,
            "requests": requests,
            "wall_s": wall.as_dict() if wall else None,
            "user_s": self.median_of("user"),
            "sys_s": self.median_of("sys"),
            "requests_per_s": round(requests / wall.median, 1) if wall and wall.median else None,
            "client_cpu_us_per_request": client.as_dict(1) if client else None,
            "server_cpu_us_per_request": server.as_dict(1) if server else None,
        }


@dataclass(slots=True)
class ExperimentConfig:
    servers: Sequence[ServerSpec]
    clients: Sequence[ClientSpec]
    repeat: int = 3
    client_timeout: float = 60.0  # one crawl
    start_timeout: float = 30.0
    warm_up: bool = True
    h2load: str | None = None  # its path, when the h2load clients are wanted


@dataclass(slots=True)
class ServerOutcome:
    spec: ServerSpec
    status: str = "not run"  # ok | failed to start: ... | not installed: ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "description": self.spec.description,
            "versions": self.spec.versions(),
            "status": self.status,
        }


@dataclass(slots=True)
class ExperimentResult:
    cells: list[Cell]
    servers: list[ServerOutcome]
    repeat: int
    pinning: Pinning
    book_count: int
    started: float
    duration: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)

    def cell(self, server: str, client: str) -> Cell | None:
        for cell in self.cells:
            if cell.server == server and cell.client.key == client:
                return cell
        return None

    def _median_wall(self, server: str, client: str) -> float | None:
        cell = self.cell(server, client)
        wall = cell.wall() if cell is not None else None
        return wall.median if wall else None

    def speed_vs_post(self, cell: Cell) -> float | None:
        """How many times faster than the post's setup over the same protocol (>1 = faster)."""
        baseline = f"{POST_BASELINE[cell.client.protocol]}-{cell.client.protocol}"
        wall = cell.wall()
        return ratio(self._median_wall(POST_SERVER, baseline), wall.median if wall else None)

    def speed_vs_ours(self, cell: Cell) -> float | None:
        """How many times faster than our server with the same client (>1 = faster than ours)."""
        wall = cell.wall()
        return ratio(self._median_wall("ours", cell.client.key), wall.median if wall else None)

    def as_dict(self) -> dict[str, Any]:
        cells = []
        for cell in self.cells:
            entry = cell.as_dict()
            for name, value in (
                ("speed_vs_post", self.speed_vs_post(cell)),
                ("speed_vs_ours", self.speed_vs_ours(cell)),
            ):
                entry[name] = round(value, 3) if value is not None else None
            cells.append(entry)
        return {
            "kind": "h2books bench: the post's crawl",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(self.duration, 1),
            "repeat": self.repeat,
            "books": self.book_count,
            "pinning": self.pinning.describe(),
            "machine": self.machine,
            "post_baseline": {
                "server": POST_SERVER,
                "clients": {protocol: name for protocol, name in POST_BASELINE.items()},
            },
            "servers": [outcome.as_dict() for outcome in self.servers],
            "cells": cells,
        }


def run_experiment(
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress = no_progress,
) -> ExperimentResult:
    result = ExperimentResult(
        cells=[],
        servers=[],
        repeat=config.repeat,
        pinning=pinning,
        book_count=len(space.book_ids),
        started=time.time(),
    )
    wall_start = time.perf_counter()
    for spec in config.servers:
        cells = [Cell(spec.name, client) for client in config.clients]
        result.cells.extend(cells)
        outcome = ServerOutcome(spec)
        result.servers.append(outcome)
        missing = spec.missing()
        if missing:
            outcome.status = f"not installed (no {', '.join(missing)})"
            _skip(cells, outcome.status, config.repeat, progress)
            continue
        progress(f"{spec.name}: starting", 0)
        try:
            server = start_server(
                spec, space.paths, pinning, space.scratch, timeout=config.start_timeout
            )
        except ServerStartError as exc:
            outcome.status = str(exc)
            _skip(cells, outcome.status, config.repeat, progress)
            continue
        try:
            outcome.status = "ok"
            _run_server_cells(server, cells, config, space, pinning, progress)
            if not server.alive():
                outcome.status = f"died: {server.exit_reason()}"
        finally:
            server.stop()
    result.duration = time.perf_counter() - wall_start
    return result


def _skip(cells: list[Cell], reason: str, repeat: int, progress: Progress) -> None:
    for cell in cells:
        cell.note = reason
        progress(f"{cell.server} {cell.client.label}: skipped", repeat)


def _run_server_cells(
    server: RunningServer,
    cells: list[Cell],
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress,
) -> None:
    uri_list = write_uri_list(space.scratch / f"uris-{server.port}.txt", server.url, space.book_ids)
    if config.warm_up:
        progress(f"{server.spec.name}: warming up", 0)
        for protocol in ("h2", "h1"):
            _crawl(ClientSpec("ours", protocol), server, config, space, pinning, uri_list)
    given_up: set[str] = set()
    for round_number in range(config.repeat):
        for cell in cells:
            label = f"{server.spec.name} ⇄ {cell.client.label} ({round_number + 1}/{config.repeat})"
            progress(label, 0)
            if cell.client.key in given_up:
                progress(label, 1)
                continue
            if not server.alive():
                cell.runs.append(CrawlRun(False, error=f"server down: {server.exit_reason()}"))
            else:
                run = _crawl(cell.client, server, config, space, pinning, uri_list)
                cell.runs.append(run)
                if run.error.startswith("stalled"):
                    # One stall is enough to know: don't spend the timeout again on this cell.
                    given_up.add(cell.client.key)
                    cell.note = f"not repeated after it stalled (run {round_number + 1})"
            progress(label, 1)


def _crawl(
    client: ClientSpec,
    server: RunningServer,
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
    uri_list: Path,
) -> CrawlRun:
    # A crawl is short (~3000 requests): clock ticks (10 ms) would be too coarse.
    before = server.cpu_seconds(precise=True)
    if client.name == "h2load":
        run = _h2load_crawl(client, config, space, pinning, uri_list)
    else:
        run = _python_crawl(client, server, config, space, pinning)
    run.server_cpu = max(0.0, server.cpu_seconds(precise=True) - before)
    if not run.ok and not server.alive():
        run.error = f"{run.error} (server died: {server.exit_reason()})"
    return run


def _python_crawl(
    client: ClientSpec,
    server: RunningServer,
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
) -> CrawlRun:
    argv = [
        *pinning.client_prefix,
        sys.executable,
        "-m",
        "h2books.bench.client_main",
        client.name,
        server.url,
        "--http2" if client.protocol == "h2" else "--no-http2",
        "--cacert",
        str(space.paths.ca),
    ]
    finished = run_bounded(argv, timeout=config.client_timeout, env=child_environment())
    if finished.timed_out:
        return CrawlRun(False, error=f"stalled: no result within {config.client_timeout:g} s")
    report = _last_json_line(finished.stdout)
    if report is None:
        tail = (finished.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return CrawlRun(False, error=f"client exited with code {finished.returncode}: {tail}")
    if not report.get("ok"):
        return CrawlRun(False, error=str(report.get("error", "failed")))
    run = CrawlRun(
        True,
        wall=float(report["wall"]),
        user=float(report["user"]),
        sys=float(report["sys"]),
        requests=int(report["requests"]),
        http_version=str(report.get("http_version", "")),
    )
    return _check_version(run, client)


def _h2load_crawl(
    client: ClientSpec,
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
    uri_list: Path,
) -> CrawlRun:
    if config.h2load is None:
        return CrawlRun(False, error="h2load is not installed")
    h2 = client.protocol == "h2"
    # One connection, like the crawl: 100 streams in flight over h2, one at a time over h1.
    command = h2load_command(
        uri_list,
        http1=not h2,
        requests=len(space.book_ids),
        connections=1,
        streams=100 if h2 else 1,
        executable=config.h2load,
    )
    finished = run_bounded([*pinning.client_prefix, *command], timeout=config.client_timeout)
    if finished.timed_out:
        return CrawlRun(False, error=f"stalled: no result within {config.client_timeout:g} s")
    try:
        report = parse_h2load_output(finished.stdout)
    except H2loadParseError as exc:
        return CrawlRun(False, error=f"h2load exited with code {finished.returncode}: {exc}")
    if not report.all_succeeded:
        return CrawlRun(False, error=f"h2load: {report.problem()}")
    run = CrawlRun(
        True,
        wall=report.duration,
        user=finished.user,
        sys=finished.sys,
        requests=report.total,
        http_version=report.protocol,
    )
    return _check_version(run, client)


def _check_version(run: CrawlRun, client: ClientSpec) -> CrawlRun:
    if run.http_version not in HTTP_VERSIONS[client.protocol]:
        return CrawlRun(
            False,
            error=f"asked for {client.protocol}, got {run.http_version or 'no protocol'}",
        )
    return run


def _last_json_line(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None
