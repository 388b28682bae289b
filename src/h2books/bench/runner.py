"""One runner for every benchmark: servers x workloads x conditions, alternated, repeated.

A plan names the servers, the workloads (a crawl by one client, or an h2load load)
and the conditions (today the loopback as it is; the next issue adds RTT and loss).
Each (server, workload, condition) is a cell. The order:

1. start every installed server (pinned to the server core, each in its own
   session so that its CPU time is the session's, workers included); one that
   fails to start turns its cells into marked failures;
2. warm each cell up with one unrecorded run;
3. `repetitions` rounds, each running every cell once, server after server. A
   noisy machine's slow minutes then spread over every server instead of landing
   on whichever ran then (the reason for all servers being up at once).

Each run records the server's CPU over it (from /proc). A run that stalls is not
repeated; a server that dies turns its remaining runs into failures. What a run
measures, and what it records, is the workload's `measure`: the runner only
orders, times the server and keeps the cells.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from h2books.bench.h2load import write_uri_list
from h2books.bench.processes import Pinning
from h2books.bench.progress import Progress, no_progress
from h2books.bench.servers import (
    RunningServer,
    ServerSpec,
    ServerStartError,
    server_key,
    start_server,
)
from h2books.bench.workspace import Workspace
from h2books.netem.conditions import Conditions

__all__ = [
    "LOOPBACK",
    "Condition",
    "Plan",
    "PlanCell",
    "PlanResult",
    "RunRecord",
    "Target",
    "WorkloadLike",
    "network_condition",
    "run_plan",
]


@dataclass(frozen=True, slots=True)
class Condition:
    """The network between client and server. `applied` wraps every run of a cell.

    The loopback as it is (`LOOPBACK`), or an emulated link (`network_condition`): its
    `applied` brings the link up, puts the runner's thread (and so every client process
    it starts) on the client's side, and takes the link down after the run.
    """

    key: str
    title: str
    applied: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "title": self.title}


LOOPBACK = Condition("loopback", "loopback, nothing added")


def network_condition(conditions: Conditions) -> Condition:
    """A `Condition` for `conditions`: the packet-level emulated link around each run."""
    if not conditions.emulated:
        return LOOPBACK

    @contextlib.contextmanager
    def applied() -> Iterator[None]:
        from h2books.netem.emulator import EmulatedLink

        with EmulatedLink(conditions) as link, link.client_side():
            yield

    title = f"{conditions.describe()} (emulated link: namespaces + TUN)"
    return Condition(conditions.key, title, applied)


class WorkloadLike(Protocol):
    """What the runner needs of a workload: a key, and which protocol it speaks."""

    @property
    def key(self) -> str: ...

    @property
    def protocol(self) -> str: ...  # "h1" | "h2" (later "h3")


class RunRecord(Protocol):
    """What the runner needs of one run's result; the workload fills in the rest."""

    ok: bool
    problem: str
    server_cpu: float


@dataclass(frozen=True, slots=True)
class Target:
    """A started server, as a workload sees it: where it is and the URI list over every book."""

    server: RunningServer
    uri_list: Path
    space: Workspace
    pinning: Pinning


W = TypeVar("W", bound=WorkloadLike)
R = TypeVar("R", bound=RunRecord)


@dataclass(slots=True)
class PlanCell(Generic[W, R]):
    server: str
    workload: W
    condition: Condition = LOOPBACK
    app: str = "native"
    runs: list[R] = field(default_factory=list)
    warm_up: R | None = None
    note: str = ""  # why it has fewer runs than asked (not started, stalled, ...)
    not_applicable: str = ""  # why it is not run at all, without failing (h2 on an h1 server)

    @property
    def display_server(self) -> str:
        return self.server if self.app == "native" else f"{self.server} ({self.app})"

    @property
    def ok_runs(self) -> list[R]:
        return [run for run in self.runs if run.ok]

    @property
    def failed_runs(self) -> list[R]:
        return [run for run in self.runs if not run.ok]

    @property
    def server_key(self) -> str:
        return server_key(self.server, self.app)

    @property
    def label(self) -> str:
        condition = "" if self.condition is LOOPBACK else f" [{self.condition.key}]"
        return f"{self.display_server} {self.workload.key}{condition}"


@dataclass(slots=True)
class Plan(Generic[W, R]):
    servers: Sequence[ServerSpec]
    workloads: Sequence[W]
    measure: Callable[[Target, Any], R]  # (target, cell of `cell_type`) -> one run
    failed: Callable[[str], R]  # a run that could not happen, with why
    cell_type: type[PlanCell[W, R]] = PlanCell
    conditions: Sequence[Condition] = (LOOPBACK,)
    repetitions: int = 5
    warm_up: bool = True
    precise_cpu: bool = False  # schedstat (ns) rather than /proc stat ticks: for short runs
    start_timeout: float = 30.0

    def cells(self) -> list[PlanCell[W, R]]:
        return [
            self.cell_type(spec.name, workload, condition, spec.app)
            for spec in self.servers
            for workload in self.workloads
            for condition in self.conditions
        ]

    @property
    def steps(self) -> int:
        """Progress steps of the whole plan: one per run, warm-ups included."""
        per_cell = self.repetitions + (1 if self.warm_up else 0)
        return len(self.servers) * len(self.workloads) * len(self.conditions) * per_cell


@dataclass(slots=True)
class PlanResult(Generic[W, R]):
    cells: list[PlanCell[W, R]]
    server_status: dict[str, str]  # by server key: ok | not installed ... | failed to start ...
    started: float
    duration: float = 0.0


def run_plan(
    plan: Plan[W, R],
    space: Workspace,
    pinning: Pinning,
    progress: Progress = no_progress,
) -> PlanResult[W, R]:
    cells = plan.cells()
    result = PlanResult(cells, {spec.key: "not run" for spec in plan.servers}, time.time())
    wall_start = time.perf_counter()
    per_cell = plan.repetitions + (1 if plan.warm_up else 0)
    by_server = {
        spec.key: [cell for cell in cells if cell.server_key == spec.key] for spec in plan.servers
    }
    with _started(plan, space, pinning, result, progress) as targets:
        for spec in plan.servers:
            if spec.key not in targets:
                for cell in by_server[spec.key]:
                    cell.note = result.server_status[spec.key]
                    progress(f"{cell.label}: skipped", per_cell)
                continue
            for cell in by_server[spec.key]:
                if not spec.speaks(cell.workload.protocol):
                    cell.not_applicable = f"{'/'.join(spec.protocols)} only"
                    progress(f"{cell.label}: {cell.not_applicable}", per_cell)
        live = [cell for cell in cells if not cell.note and not cell.not_applicable]
        if plan.warm_up:
            for cell in live:
                progress(f"{cell.label}: warm-up", 0)
                cell.warm_up = _run_once(plan, targets[cell.server_key], cell)
                progress(f"{cell.label}: warm-up", 1)
        for round_number in range(1, plan.repetitions + 1):
            for cell in live:
                label = f"{cell.label} ({round_number}/{plan.repetitions})"
                progress(label, 0)
                if not cell.note:  # a stalled cell is given up
                    run = _run_once(plan, targets[cell.server_key], cell)
                    cell.runs.append(run)
                    if run.problem.startswith("stalled"):
                        cell.note = f"not repeated after it stalled (run {round_number})"
                progress(label, 1)
        for name, target in targets.items():
            if not target.server.alive():
                result.server_status[name] = f"died: {target.server.exit_reason()}"
    result.duration = time.perf_counter() - wall_start
    return result


@contextlib.contextmanager
def _started(
    plan: Plan[Any, Any],
    space: Workspace,
    pinning: Pinning,
    result: PlanResult[Any, Any],
    progress: Progress,
) -> Iterator[dict[str, Target]]:
    """Every installed server of the plan, up; all stopped on the way out."""
    targets: dict[str, Target] = {}
    try:
        for spec in plan.servers:
            missing = spec.missing()
            if missing:
                result.server_status[spec.key] = f"not installed (no {', '.join(missing)})"
                continue
            progress(f"{spec.name}: starting", 0)
            try:
                server = start_server(
                    spec, space.paths, pinning, space.scratch, timeout=plan.start_timeout
                )
            except ServerStartError as exc:
                result.server_status[spec.key] = str(exc)
                continue
            uri_list = write_uri_list(
                space.scratch / f"uris-{server.port}.txt", server.url, space.book_ids
            )
            targets[spec.key] = Target(server, uri_list, space, pinning)
            result.server_status[spec.key] = "ok"
        yield targets
    finally:
        for target in targets.values():
            target.server.stop()


def _run_once(plan: Plan[W, R], target: Target, cell: PlanCell[W, R]) -> R:
    server = target.server
    if not server.alive():
        return plan.failed(f"server down: {server.exit_reason()}")
    with cell.condition.applied():
        before = server.cpu_seconds(precise=plan.precise_cpu)
        run = plan.measure(target, cell)
        run.server_cpu = max(0.0, server.cpu_seconds(precise=plan.precise_cpu) - before)
    if not server.alive():
        died = f"server died: {server.exit_reason()}"
        run.ok = False
        run.problem = f"{run.problem} ({died})" if run.problem else died
    return run
