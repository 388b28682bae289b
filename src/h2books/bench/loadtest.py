"""The h2load benchmark of ``shared/BENCHMARKING.md``: our server against each peer.

For each server and each workload: start the server (pinned to the server
core), write the URI list over every book, run h2load (pinned to the client
core) once unrecorded to warm up, then N recorded runs; stop the server. A run
counts only when every request succeeded. Each run also records the server's
CPU time (its whole session, workers included) divided by the requests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from h2books.bench.h2load import (
    H2loadParseError,
    H2loadReport,
    h2load_command,
    parse_h2load_output,
    write_uri_list,
)
from h2books.bench.names import WORKLOAD_KEYS
from h2books.bench.processes import Pinning, run_bounded
from h2books.bench.progress import Progress, no_progress
from h2books.bench.servers import RunningServer, ServerSpec, ServerStartError, start_server
from h2books.bench.stats import Spread, ratio, spread
from h2books.bench.workspace import Workspace

__all__ = [
    "DEFAULT_WORKLOADS",
    "WORKLOADS",
    "LoadCell",
    "LoadConfig",
    "LoadResult",
    "LoadRun",
    "Workload",
    "run_loadtest",
]


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    title: str
    http1: bool
    requests: int
    connections: int
    streams: int

    def command(self, uri_list: Any, executable: str, requests: int | None = None) -> list[str]:
        return h2load_command(
            uri_list,
            http1=self.http1,
            requests=requests or self.requests,
            connections=self.connections,
            streams=self.streams,
            executable=executable,
        )


WORKLOADS: dict[str, Workload] = {
    workload.key: workload
    for workload in (
        Workload("h2-1c", "h2, 1 connection x 100 streams", False, 30000, 1, 100),
        Workload("h2-10c", "h2, 10 connections x 100 streams", False, 30000, 10, 100),
        Workload("h1-10c", "h1, 10 keep-alive connections", True, 30000, 10, 1),
        Workload("h1-1c", "h1, 1 connection, one request at a time", True, 10000, 1, 1),
    )
}
DEFAULT_WORKLOADS = WORKLOAD_KEYS


@dataclass(slots=True)
class LoadRun:
    ok: bool
    requests_per_second: float = 0.0
    duration: float = 0.0
    requests: int = 0
    server_cpu: float = 0.0
    problem: str = ""
    report: H2loadReport | None = None

    @property
    def server_cpu_us_per_request(self) -> float | None:
        return 1e6 * self.server_cpu / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ok": self.ok,
            "requests_per_s": self.requests_per_second,
            "duration_s": round(self.duration, 6),
            "requests": self.requests,
            "server_cpu_s": round(self.server_cpu, 3),
        }
        if self.problem:
            entry["problem"] = self.problem
        if self.report is not None:
            entry["h2load"] = self.report.as_dict()
        return entry


@dataclass(slots=True)
class LoadCell:
    server: str
    workload: Workload
    runs: list[LoadRun] = field(default_factory=list)
    warm_up: LoadRun | None = None
    note: str = ""

    @property
    def ok_runs(self) -> list[LoadRun]:
        return [run for run in self.runs if run.ok]

    @property
    def failed_runs(self) -> list[LoadRun]:
        return [run for run in self.runs if not run.ok]

    def rate(self) -> Spread | None:
        return spread(run.requests_per_second for run in self.ok_runs)

    def server_cpu_us(self) -> Spread | None:
        return spread(
            value for run in self.ok_runs if (value := run.server_cpu_us_per_request) is not None
        )

    def failed_rate(self) -> Spread | None:
        """h2load's req/s of the runs that do not count (every completed request, any status).

        Shown, marked, for a server none of whose runs counted: a peer that closes
        its connection midway still has a speed until then.
        """
        return spread(
            run.requests_per_second
            for run in self.failed_runs
            if run.report is not None and run.requests_per_second > 0
        )

    def problems(self) -> list[str]:
        """The note, then each distinct problem once, with the runs that had it."""
        found = [self.note] if self.note else []
        runs_by_problem: dict[str, list[int]] = {}
        for index, run in enumerate(self.runs, 1):
            if not run.ok:
                runs_by_problem.setdefault(run.problem, []).append(index)
        for problem, indexes in runs_by_problem.items():
            if len(indexes) == len(self.runs) > 1:
                which = f"all {len(indexes)} runs"
            elif len(indexes) == 1:
                which = f"run {indexes[0]}"
            else:
                which = "runs " + ", ".join(map(str, indexes))
            found.append(f"{which}: {problem}")
        return found

    def as_dict(self) -> dict[str, Any]:
        rate, cpu = self.rate(), self.server_cpu_us()
        return {
            "server": self.server,
            "workload": self.workload.key,
            "runs_ok": len(self.ok_runs),
            "runs_failed": len(self.failed_runs),
            "requests_per_s": rate.as_dict(1) if rate else None,
            "failed_runs_requests_per_s": failed.as_dict(1)
            if (failed := self.failed_rate())
            else None,
            "server_cpu_us_per_request": cpu.as_dict(1) if cpu else None,
            "problems": self.problems(),
            "warm_up": self.warm_up.as_dict() if self.warm_up else None,
            "runs": [run.as_dict() for run in self.runs],
        }


@dataclass(slots=True)
class LoadConfig:
    servers: Sequence[ServerSpec]
    workloads: Sequence[Workload]
    h2load: str
    runs: int = 5
    requests: int | None = None  # overrides every workload's count (for quick checks)
    run_timeout: float = 180.0
    start_timeout: float = 30.0


@dataclass(slots=True)
class LoadResult:
    cells: list[LoadCell]
    server_status: dict[str, str]
    server_versions: dict[str, dict[str, str]]
    server_descriptions: dict[str, str]
    runs: int
    pinning: Pinning
    book_count: int
    started: float
    duration: float = 0.0
    machine: dict[str, Any] = field(default_factory=dict)
    h2load_version: str | None = None
    command: str = ""

    def cell(self, server: str, workload: str) -> LoadCell | None:
        for cell in self.cells:
            if cell.server == server and cell.workload.key == workload:
                return cell
        return None

    def ours_over(self, cell: LoadCell) -> float | None:
        """Our median req/s over this cell's (>1: ours is faster)."""
        ours = self.cell("ours", cell.workload.key)
        ours_rate = ours.rate() if ours is not None else None
        rate = cell.rate()
        return ratio(ours_rate.median if ours_rate else None, rate.median if rate else None)

    def ratio_to_failed(self, cell: LoadCell) -> float | None:
        """Our median req/s over the rate of this cell's failed runs (for information only)."""
        ours = self.cell("ours", cell.workload.key)
        ours_rate = ours.rate() if ours is not None else None
        failed = cell.failed_rate()
        return ratio(ours_rate.median if ours_rate else None, failed.median if failed else None)

    def as_dict(self) -> dict[str, Any]:
        cells = []
        for cell in self.cells:
            entry = cell.as_dict()
            value = self.ours_over(cell)
            entry["ours_over_this"] = round(value, 3) if value is not None else None
            cells.append(entry)
        return {
            "kind": "h2books bench --load h2load",
            "command": self.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(self.duration, 1),
            "runs": self.runs,
            "books": self.book_count,
            "pinning": self.pinning.describe(),
            "machine": self.machine,
            "h2load": self.h2load_version,
            "servers": {
                name: {
                    "status": status,
                    "description": self.server_descriptions.get(name, ""),
                    "versions": self.server_versions.get(name, {}),
                }
                for name, status in self.server_status.items()
            },
            "cells": cells,
        }


def run_loadtest(
    config: LoadConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress = no_progress,
) -> LoadResult:
    result = LoadResult(
        cells=[],
        server_status={},
        server_versions={},
        server_descriptions={},
        runs=config.runs,
        pinning=pinning,
        book_count=len(space.book_ids),
        started=time.time(),
    )
    wall_start = time.perf_counter()
    for spec in config.servers:
        result.server_versions[spec.name] = spec.versions()
        result.server_descriptions[spec.name] = spec.description
        missing = spec.missing()
        status = f"not installed (no {', '.join(missing)})" if missing else "ok"
        for workload in config.workloads:
            cell = LoadCell(spec.name, workload)
            result.cells.append(cell)
            if missing:
                cell.note = status
                progress(f"{spec.name} {workload.key}: not installed", config.runs + 1)
                continue
            # A fresh server per workload, as the method says.
            progress(f"{spec.name} {workload.key}: starting", 0)
            try:
                server = start_server(
                    spec, space.paths, pinning, space.scratch, timeout=config.start_timeout
                )
            except ServerStartError as exc:
                cell.note = str(exc)
                status = str(exc)
                progress(f"{spec.name} {workload.key}: failed to start", config.runs + 1)
                continue
            try:
                _run_cell(cell, server, config, space, pinning, progress)
                if not server.alive():
                    status = f"died: {server.exit_reason()}"
            finally:
                server.stop()
        result.server_status[spec.name] = status
    result.duration = time.perf_counter() - wall_start
    return result


def _run_cell(
    cell: LoadCell,
    server: RunningServer,
    config: LoadConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress,
) -> None:
    uri_list = write_uri_list(space.scratch / f"uris-{server.port}.txt", server.url, space.book_ids)
    command = [
        *pinning.client_prefix,
        *cell.workload.command(uri_list, config.h2load, config.requests),
    ]
    name = f"{server.spec.name} {cell.workload.key}"
    progress(f"{name}: warm-up", 0)
    cell.warm_up = _run(command, server, config)
    progress(f"{name}: warm-up", 1)
    for index in range(config.runs):
        label = f"{name}: run {index + 1}/{config.runs}"
        progress(label, 0)
        if not server.alive():
            cell.runs.append(LoadRun(False, problem=f"server down: {server.exit_reason()}"))
        else:
            run = _run(command, server, config)
            cell.runs.append(run)
            if run.problem.startswith("stalled"):
                cell.note = "not repeated after it stalled"
                progress(label, config.runs - index)
                return
        progress(label, 1)


def _run(command: list[str], server: RunningServer, config: LoadConfig) -> LoadRun:
    before = server.cpu_seconds()
    finished = run_bounded(command, timeout=config.run_timeout)
    server_cpu = server.cpu_seconds() - before
    if finished.timed_out:
        return LoadRun(False, problem=f"stalled: h2load did not finish in {config.run_timeout:g} s")
    try:
        report = parse_h2load_output(finished.stdout)
    except H2loadParseError as exc:
        return LoadRun(False, problem=f"h2load exited with code {finished.returncode}: {exc}")
    problem = report.problem()
    if not problem and not server.alive():
        problem = f"server died: {server.exit_reason()}"
    return LoadRun(
        not problem,
        requests_per_second=report.requests_per_second,
        duration=report.duration,
        requests=report.total,
        server_cpu=server_cpu,
        problem=problem,
        report=report,
    )
