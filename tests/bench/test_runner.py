"""The one runner: the order of its runs, its dimensions, and cells it cannot run."""

from __future__ import annotations

import contextlib
import http.client
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace

from h2books.bench.processes import detect_pinning
from h2books.bench.runner import LOOPBACK, Condition, Plan, PlanCell, Target, run_plan
from h2books.bench.servers import ServerSpec, custom_server
from h2books.bench.workspace import Workspace
from tests.bench.conftest import FAKE_SERVER


@dataclass(frozen=True)
class Fetch:
    """A workload: one HTTPS ``GET /`` (the fake servers answer it over HTTP/1.1)."""

    key: str
    protocol: str = "h1"


@dataclass
class Run:
    ok: bool
    problem: str = ""
    server_cpu: float = 0.0
    status: int = 0


def fake(name: str) -> ServerSpec:
    # "serve" is no failure mode of fake_server.py: it answers GET / and nothing else.
    return custom_server(name, f"{{python}} {FAKE_SERVER} serve {{port}} {{cert}} {{key}}")


def plan_for(
    servers: list[ServerSpec],
    workloads: list[Fetch],
    log: list[tuple[str, str, str]],
    conditions: tuple[Condition, ...] = (LOOPBACK,),
    repetitions: int = 2,
) -> Plan[Fetch, Run]:
    def measure(target: Target, cell: PlanCell[Fetch, Run]) -> Run:
        log.append((cell.server, cell.workload.key, cell.condition.key))
        context = ssl.create_default_context(cafile=str(target.space.paths.ca))
        port = target.server.port
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        return Run(response.status == 200, status=response.status)

    return Plan(
        servers=servers,
        workloads=workloads,
        measure=measure,
        failed=lambda problem: Run(False, problem),
        conditions=conditions,
        repetitions=repetitions,
    )


def test_cells_are_warmed_up_then_alternated_round_after_round(bench_space: Workspace) -> None:
    log: list[tuple[str, str, str]] = []
    plan = plan_for([fake("a"), fake("b")], [Fetch("x"), Fetch("y")], log)
    steps: list[int] = []
    result = run_plan(plan, bench_space, detect_pinning(), lambda _, n: steps.append(n))
    every_cell = [(s, w, "loopback") for s in ("a", "b") for w in ("x", "y")]
    assert log == every_cell * 3  # warm-ups, round 1, round 2
    assert sum(steps) == plan.steps == 12
    assert result.server_status == {"a": "ok", "b": "ok"}
    for cell in result.cells:
        assert cell.warm_up is not None and cell.warm_up.ok
        assert [run.status for run in cell.runs] == [200, 200]
        assert all(run.server_cpu >= 0 for run in cell.runs)


def test_conditions_are_one_more_dimension_applied_around_each_run(
    bench_space: Workspace,
) -> None:
    entered: list[str] = []

    def applied(key: str) -> contextlib.AbstractContextManager[None]:
        @contextlib.contextmanager
        def around() -> Iterator[None]:
            entered.append(key)
            yield

        return around()

    slow = Condition("slow", "a pretend delay", lambda: applied("slow"))
    log: list[tuple[str, str, str]] = []
    plan = plan_for([fake("a")], [Fetch("x")], log, conditions=(LOOPBACK, slow), repetitions=1)
    result = run_plan(plan, bench_space, detect_pinning())
    assert [cell.condition.key for cell in result.cells] == ["loopback", "slow"]
    assert log == [("a", "x", "loopback"), ("a", "x", "slow")] * 2
    assert entered == ["slow", "slow"]  # its warm-up and its one run
    assert result.cells[1].label == "a x [slow]"


def test_a_protocol_the_server_does_not_speak_is_not_applicable(bench_space: Workspace) -> None:
    h1_only = replace(fake("old"), protocols=("h1",))
    log: list[tuple[str, str, str]] = []
    plan = plan_for([h1_only], [Fetch("h2-ish", "h2"), Fetch("h1-ish")], log)
    steps: list[int] = []
    result = run_plan(plan, bench_space, detect_pinning(), lambda _, n: steps.append(n))
    h2_cell, h1_cell = result.cells
    assert h2_cell.not_applicable == "h1 only" and h2_cell.runs == [] and not h2_cell.note
    assert len(h1_cell.ok_runs) == 2
    assert {workload for _, workload, _ in log} == {"h1-ish"}
    assert sum(steps) == plan.steps


def test_a_server_that_fails_to_start_does_not_stop_the_others(bench_space: Workspace) -> None:
    broken = custom_server("broken", "{python} -c 'import sys; sys.exit(4)'")
    log: list[tuple[str, str, str]] = []
    plan = plan_for([broken, fake("a")], [Fetch("x")], log, repetitions=1)
    steps: list[int] = []
    result = run_plan(plan, bench_space, detect_pinning(), lambda _, n: steps.append(n))
    broken_cell, ok_cell = result.cells
    assert "exited with code 4" in broken_cell.note and broken_cell.runs == []
    assert result.server_status["broken"].startswith("failed to start")
    assert len(ok_cell.ok_runs) == 1
    assert sum(steps) == plan.steps == 4


def test_servers_of_two_app_sets_keep_apart(bench_space: Workspace) -> None:
    log: list[tuple[str, str, str]] = []
    native, asgi = fake("ours"), replace(fake("ours"), app="asgi")
    result = run_plan(plan_for([native, asgi], [Fetch("x")], log, repetitions=1), bench_space,
                      detect_pinning())  # fmt: skip
    assert set(result.server_status) == {"ours", "asgi:ours"}
    assert [cell.display_server for cell in result.cells] == ["ours", "ours (asgi)"]
    assert all(len(cell.ok_runs) == 1 for cell in result.cells)
