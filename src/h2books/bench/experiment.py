"""The post's experiment: each client crawls each server, over HTTP/1.1 and HTTP/2.

A crawl is the post's: ``GET /``, then ``GET /book?id=N`` for every book, all
checked. Each (server, client, protocol) cell is repeated and reported as the
median and min-max of its wall time, with the client's CPU and the server's.

A plan for the runner (`h2books.bench.runner`), whose workloads are the clients:
every server is started once, each cell warmed up with one unrecorded crawl, then
rounds that run every cell once, so that slow drift of a noisy machine spreads
over all cells instead of landing on one. A server that fails to start, dies or
stalls turns its cells into marked failures; the run goes on with the others.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from h2books.bench.h2load import (
    H2loadParseError,
    h2load_command,
    parse_h2load_output,
)
from h2books.bench.names import DEFAULT_CLIENT_KEYS
from h2books.bench.processes import Pinning, run_bounded
from h2books.bench.progress import Progress, no_progress
from h2books.bench.runner import LOOPBACK, Condition, Plan, PlanCell, Target, run_plan
from h2books.bench.servers import ServerSpec, child_environment
from h2books.bench.stats import Spread, ratio, spread
from h2books.bench.workspace import Workspace
from h2books.client.stats import HeaderBytes

__all__ = [
    "ALL_CLIENTS",
    "DEFAULT_CLIENTS",
    "POST_BASELINE",
    "Cell",
    "ClientSpec",
    "CrawlRun",
    "ExperimentConfig",
    "ExperimentResult",
    "crawl_plan",
    "run_experiment",
]

# The post's setup: its Twisted server, requests over HTTP/1.1, hyper (now httpx) over HTTP/2.
POST_SERVER = "twisted"
POST_BASELINE = {"h1": "requests", "h2": "httpx"}
HTTP_VERSIONS = {
    "h1": ("HTTP/1.1", "http/1.1"),
    "h2": ("HTTP/2", "h2"),
    "h3": ("HTTP/3", "h3"),
}
TIMES = "\u00d7"  # multiplication sign
_PROTOCOL_LABELS = {"h1": "HTTP/1.1", "h2": "HTTP/2", "h3": "HTTP/3"}


@dataclass(frozen=True, slots=True)
class ClientSpec:
    name: str  # ours | requests | httpx | h2load
    protocol: str  # h1 | h2 | h3
    connections: int = 1  # ours only: a browser opens 6 HTTP/1.1 connections to an origin
    push: bool = False  # ours only, HTTP/2: takes the books the server pushes with the index

    @property
    def key(self) -> str:
        """``ours-h1``, ``ours-h1x6`` (6 connections), ``ours-h2-push``."""
        many = f"x{self.connections}" if self.connections > 1 else ""
        return f"{self.name}-{self.protocol}{many}{'-push' if self.push else ''}"

    @property
    def label(self) -> str:
        text = f"{self.name} {_PROTOCOL_LABELS[self.protocol]}"
        if self.connections > 1:
            text += f" {TIMES}{self.connections} connections"
        return text + (" + push" if self.push else "")


ALL_CLIENTS: dict[str, ClientSpec] = {
    spec.key: spec
    for spec in (
        ClientSpec("ours", "h1"),
        ClientSpec("ours", "h1", connections=6),
        ClientSpec("ours", "h2"),
        ClientSpec("ours", "h2", push=True),
        # Debian's h2load is built without QUIC (no --alpn-list=h3): ours is the h3 client.
        ClientSpec("ours", "h3"),
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
    problem: str = ""
    pushed: int = 0  # books that came pushed rather than requested
    headers: HeaderBytes | None = None  # from clients that count them (ours)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def as_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"ok": False, "error": self.problem}
        return {
            "ok": True,
            "wall_s": round(self.wall, 6),
            "user_s": round(self.user, 6),
            "sys_s": round(self.sys, 6),
            "requests": self.requests,
            "pushed": self.pushed,
            "server_cpu_s": round(self.server_cpu, 3),
            "http_version": self.http_version,
            "headers": self.headers.as_dict() if self.headers else None,
        }


class Cell(PlanCell[ClientSpec, CrawlRun]):
    """One (server, client) of the crawl: the client is the runner's workload."""

    @property
    def client(self) -> ClientSpec:
        return self.workload

    @property
    def failed(self) -> bool:
        return not self.ok_runs

    @property
    def errors(self) -> list[str]:
        found = [run.problem for run in self.runs if not run.ok]
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
            "key": self.client.key,
            "client": self.client.name,
            "protocol": self.client.protocol,
            "condition": self.condition.as_dict(),
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
    conditions: Sequence[Condition] = (LOOPBACK,)
    # Books per crawl under each condition (by its key): the first N the index lists, the
    # same N for every client; a condition not named here crawls every book.
    books: dict[str, int] = field(default_factory=dict)

    def books_under(self, condition: Condition) -> int | None:
        return self.books.get(condition.key)


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
    books_by_condition: dict[str, int] = field(default_factory=dict)  # where fewer than all

    def books_under(self, condition: Condition) -> int:
        return min(self.books_by_condition.get(condition.key, self.book_count), self.book_count)

    def cell(self, server: str, client: str, condition: str = LOOPBACK.key) -> Cell | None:
        for cell in self.cells:
            if (cell.server, cell.client.key, cell.condition.key) == (server, client, condition):
                return cell
        return None

    def header_bytes(self, server: str = "ours") -> list[HeaderBytes]:
        """One record per protocol (h1, h2, then h3 when a cell has one), from the first
        crawl of our client against ``server`` that counted them: the figures are the same
        in every run, since the same requests get the same answers."""
        found: dict[str, HeaderBytes] = {}
        for cell in self.cells:
            if cell.server != server or cell.client.name != "ours":
                continue
            for run in cell.ok_runs:
                if run.headers is not None:
                    found.setdefault(run.headers.protocol, run.headers)
                    break
        return [found[protocol] for protocol in sorted(found)]

    def _median_wall(self, server: str, client: str, condition: str) -> float | None:
        cell = self.cell(server, client, condition)
        wall = cell.wall() if cell is not None else None
        return wall.median if wall else None

    def speed_vs_post(self, cell: Cell) -> float | None:
        """How many times faster than the post's setup over the same protocol (>1 = faster)."""
        if cell.client.protocol not in POST_BASELINE:
            return None  # the post had no HTTP/3
        baseline = f"{POST_BASELINE[cell.client.protocol]}-{cell.client.protocol}"
        wall = cell.wall()
        return ratio(
            self._median_wall(POST_SERVER, baseline, cell.condition.key),
            wall.median if wall else None,
        )

    def speed_vs_ours(self, cell: Cell) -> float | None:
        """How many times faster than our server with the same client (>1 = faster than ours)."""
        wall = cell.wall()
        return ratio(
            self._median_wall("ours", cell.client.key, cell.condition.key),
            wall.median if wall else None,
        )

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
            "books_by_condition": {
                condition.key: self.books_under(condition)
                for condition in dict.fromkeys(cell.condition for cell in self.cells)
            },
            "pinning": self.pinning.describe(),
            "machine": self.machine,
            "post_baseline": {
                "server": POST_SERVER,
                "clients": {protocol: name for protocol, name in POST_BASELINE.items()},
            },
            "servers": [outcome.as_dict() for outcome in self.servers],
            "cells": cells,
            "header_bytes": [record.as_dict() for record in self.header_bytes()],
        }


def crawl_plan(config: ExperimentConfig) -> Plan[ClientSpec, CrawlRun]:
    def measure(target: Target, cell: Cell) -> CrawlRun:
        books = config.books_under(cell.condition)
        if cell.client.name == "h2load":
            run = _h2load_crawl(cell.client, config, target, books)
        else:
            run = _python_crawl(cell.client, config, target, books)
        return _check_version(run, cell.client) if run.ok else run

    return Plan(
        servers=config.servers,
        workloads=config.clients,
        measure=measure,
        failed=lambda problem: CrawlRun(False, problem=problem),
        cell_type=Cell,
        conditions=config.conditions,
        repetitions=config.repeat,
        warm_up=config.warm_up,
        # A crawl is short (~3000 requests): clock ticks (10 ms) would be too coarse.
        precise_cpu=True,
        start_timeout=config.start_timeout,
    )


def run_experiment(
    config: ExperimentConfig,
    space: Workspace,
    pinning: Pinning,
    progress: Progress = no_progress,
) -> ExperimentResult:
    done = run_plan(crawl_plan(config), space, pinning, progress)
    return ExperimentResult(
        cells=[cell for cell in done.cells if isinstance(cell, Cell)],
        servers=[ServerOutcome(spec, done.server_status[spec.key]) for spec in config.servers],
        repeat=config.repeat,
        pinning=pinning,
        book_count=len(space.book_ids),
        started=done.started,
        duration=done.duration,
        books_by_condition=dict(config.books),
    )


def _python_crawl(
    client: ClientSpec, config: ExperimentConfig, target: Target, books: int | None
) -> CrawlRun:
    argv = [
        *target.pinning.client_prefix,
        sys.executable,
        "-m",
        "h2books.bench.client_main",
        client.name,
        target.server.url,
        *_PROTOCOL_FLAGS[client.protocol],
        "--cacert",
        str(target.space.paths.ca),
        *(["--books", str(books)] if books is not None else []),
        *(["--connections", str(client.connections)] if client.connections > 1 else []),
        *(["--push"] if client.push else []),
    ]
    finished = run_bounded(argv, timeout=config.client_timeout, env=child_environment())
    if finished.timed_out:
        return CrawlRun(False, problem=f"stalled: no result within {config.client_timeout:g} s")
    report = _last_json_line(finished.stdout)
    if report is None:
        tail = (finished.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return CrawlRun(False, problem=f"client exited with code {finished.returncode}: {tail}")
    if not report.get("ok"):
        return CrawlRun(False, problem=str(report.get("error", "failed")))
    headers = report.get("headers")
    return CrawlRun(
        True,
        wall=float(report["wall"]),
        user=float(report["user"]),
        sys=float(report["sys"]),
        requests=int(report["requests"]),
        http_version=str(report.get("http_version", "")),
        pushed=int(report.get("pushed", 0)),
        headers=HeaderBytes.from_dict(headers) if isinstance(headers, dict) else None,
    )


_PROTOCOL_FLAGS = {"h1": ("--no-http2",), "h2": ("--http2",), "h3": ("--http3",)}


def _h2load_crawl(
    client: ClientSpec, config: ExperimentConfig, target: Target, books: int | None
) -> CrawlRun:
    if config.h2load is None:
        return CrawlRun(False, problem="h2load is not installed")
    h2 = client.protocol == "h2"
    # One connection, like the crawl: 100 streams in flight over h2, one at a time over h1.
    command = h2load_command(
        target.uri_list,
        http1=not h2,
        requests=min(books or len(target.space.book_ids), len(target.space.book_ids)),
        connections=1,
        streams=100 if h2 else 1,
        executable=config.h2load,
    )
    finished = run_bounded([*target.pinning.client_prefix, *command], timeout=config.client_timeout)
    if finished.timed_out:
        return CrawlRun(False, problem=f"stalled: no result within {config.client_timeout:g} s")
    try:
        report = parse_h2load_output(finished.stdout)
    except H2loadParseError as exc:
        return CrawlRun(False, problem=f"h2load exited with code {finished.returncode}: {exc}")
    if not report.all_succeeded:
        return CrawlRun(False, problem=f"h2load: {report.problem()}")
    return CrawlRun(
        True,
        wall=report.duration,
        user=finished.user,
        sys=finished.sys,
        requests=report.total,
        http_version=report.protocol,
    )


def _check_version(run: CrawlRun, client: ClientSpec) -> CrawlRun:
    if run.http_version not in HTTP_VERSIONS[client.protocol]:
        return CrawlRun(
            False,
            problem=f"asked for {client.protocol}, got {run.http_version or 'no protocol'}",
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
