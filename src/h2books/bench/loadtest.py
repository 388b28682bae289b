"""The h2load benchmark of ``shared/BENCHMARKING.md``: our server against each peer.

A plan for the runner (`h2books.bench.runner`): each cell is h2load (pinned to the
client core) running one workload against one server; one unrecorded warm-up
run, then N recorded runs, alternated with the other cells. A run counts only
when every request succeeded. Each run also records the server's CPU time (its
whole session, workers included) divided by the requests.
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
)
from h2books.bench.names import WORKLOAD_KEYS
from h2books.bench.processes import Pinning, run_bounded
from h2books.bench.progress import Progress, no_progress
from h2books.bench.runner import LOOPBACK, Condition, Plan, PlanCell, Target, run_plan
from h2books.bench.servers import ServerSpec
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
    "load_plan",
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

    @property
    def protocol(self) -> str:
        return "h1" if self.http1 else "h2"

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


class LoadCell(PlanCell[Workload, LoadRun]):
    """One (server, workload, condition) of the h2load plan, with its figures."""

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
            "app": self.app,
            "workload": self.workload.key,
            "condition": self.condition.key,
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
    conditions: Sequence[Condition] = (LOOPBACK,)


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

    def cell(
        self, server: str, workload: str, app: str = "native", condition: str = LOOPBACK.key
    ) -> LoadCell | None:
        for cell in self.cells:
            if (cell.server, cell.workload.key, cell.app, cell.condition.key) == (
                server,
                workload,
                app,
                condition,
            ):
                return cell
        return None

    def reference(self, cell: LoadCell) -> LoadCell | None:
        """Our cell that this one is compared with: same app, workload and condition."""
        return self.cell("ours", cell.workload.key, cell.app, cell.condition.key)

    @property
    def apps(self) -> list[str]:
        return list(dict.fromkeys(cell.app for cell in self.cells))

    def ours_over(self, cell: LoadCell) -> float | None:
        """Our median req/s over this cell's (>1: ours is faster)."""
        ours = self.reference(cell)
        ours_rate = ours.rate() if ours is not None else None
        rate = cell.rate()
        return ratio(ours_rate.median if ours_rate else None, rate.median if rate else None)

    def ours_over_per_round(self, cell: LoadCell) -> Spread | None:
        """Our req/s over this cell's, round by round (the runner alternates the cells).

        Run i of every cell ran in the same round, minutes apart at most, so on a machine
        whose speed drifts this pairing is the steadier figure; over the rounds in which
        both runs counted.
        """
        ours = self.reference(cell)
        if ours is None or ours is cell:
            return None
        return spread(
            mine.requests_per_second / theirs.requests_per_second
            for mine, theirs in zip(ours.runs, cell.runs, strict=False)
            if mine.ok and theirs.ok and theirs.requests_per_second > 0
        )

    def ratio_to_failed(self, cell: LoadCell) -> float | None:
        """Our median req/s over the rate of this cell's failed runs (for information only)."""
        ours = self.reference(cell)
        ours_rate = ours.rate() if ours is not None else None
        failed = cell.failed_rate()
        return ratio(ours_rate.median if ours_rate else None, failed.median if failed else None)

    def as_dict(self) -> dict[str, Any]:
        cells = []
        for cell in self.cells:
            entry = cell.as_dict()
            value = self.ours_over(cell)
            entry["ours_over_this"] = round(value, 3) if value is not None else None
            paired = self.ours_over_per_round(cell)
            entry["ours_over_this_per_round"] = paired.as_dict(3) if paired else None
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


def load_plan(config: LoadConfig) -> Plan[Workload, LoadRun]:
    def measure(target: Target, cell: LoadCell) -> LoadRun:
        command = [
            *target.pinning.client_prefix,
            *cell.workload.command(target.uri_list, config.h2load, config.requests),
        ]
        return _run(command, config, cell.workload)

    return Plan(
        servers=config.servers,
        workloads=config.workloads,
        measure=measure,
        failed=lambda problem: LoadRun(False, problem=problem),
        cell_type=LoadCell,
        conditions=config.conditions,
        repetitions=config.runs,
        start_timeout=config.start_timeout,
    )


def run_loadtest(
    config: LoadConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress = no_progress,
) -> LoadResult:
    done = run_plan(load_plan(config), space, pinning, progress)
    return LoadResult(
        cells=[cell for cell in done.cells if isinstance(cell, LoadCell)],
        server_status=done.server_status,
        server_versions={spec.key: spec.versions() for spec in config.servers},
        server_descriptions={spec.key: spec.description for spec in config.servers},
        runs=config.runs,
        pinning=pinning,
        book_count=len(space.book_ids),
        started=done.started,
        duration=done.duration,
    )


# What h2load reports as negotiated (ALPN), by workload protocol.
_ALPN = {"h1": "http/1.1", "h2": "h2"}


def _run(command: list[str], config: LoadConfig, workload: Workload) -> LoadRun:
    finished = run_bounded(command, timeout=config.run_timeout)
    if finished.timed_out:
        return LoadRun(False, problem=f"stalled: h2load did not finish in {config.run_timeout:g} s")
    try:
        report = parse_h2load_output(finished.stdout)
    except H2loadParseError as exc:
        return LoadRun(False, problem=f"h2load exited with code {finished.returncode}: {exc}")
    problem = report.problem()
    if not problem and report.protocol != _ALPN[workload.protocol]:
        problem = f"asked for {workload.protocol}, got {report.protocol or 'no protocol'}"
    return LoadRun(
        not problem,
        requests_per_second=report.requests_per_second,
        duration=report.duration,
        requests=report.total,
        problem=problem,
        report=report,
    )
