"""The h2load benchmark's runner, against our server and against misbehaving ones."""

from __future__ import annotations

import pytest

from h2books.bench.loadtest import WORKLOADS, LoadConfig, run_loadtest
from h2books.bench.processes import detect_pinning
from h2books.bench.servers import SERVERS, custom_server
from h2books.bench.workspace import Workspace
from tests.bench.conftest import FAKE_SERVER
from tests.conftest import require_tool


@pytest.fixture
def h2load() -> str:
    return require_tool("h2load")


def test_ours_warm_up_then_recorded_runs(bench_space: Workspace, h2load: str) -> None:
    config = LoadConfig([SERVERS["ours"]], [WORKLOADS["h2-10c"]], h2load, runs=3, requests=500)
    steps: list[int] = []
    result = run_loadtest(config, bench_space, detect_pinning(), lambda _, n: steps.append(n))
    (cell,) = result.cells
    assert sum(steps) == 4  # warm-up + 3 runs
    assert cell.warm_up is not None and cell.warm_up.ok
    assert len(cell.ok_runs) == 3
    for run in cell.runs:
        assert run.report is not None and run.report.succeeded == 500
        assert run.server_cpu >= 0
    rate = cell.rate()
    assert rate is not None and rate.count == 3
    assert result.server_status == {"ours": "ok"}
    assert result.as_dict()["cells"][0]["ours_over_this"] == 1.0


def test_failed_start_and_stall_are_marked(bench_space: Workspace, h2load: str) -> None:
    broken = custom_server("broken", "{python} -c 'import sys; sys.exit(5)'")
    stall = custom_server("stall", f"{{python}} {FAKE_SERVER} stall {{port}} {{cert}} {{key}}")
    config = LoadConfig(
        [broken, stall], [WORKLOADS["h1-1c"]], h2load, runs=3, requests=50, run_timeout=2.0
    )
    result = run_loadtest(config, bench_space, detect_pinning())
    broken_cell, stall_cell = result.cells
    assert broken_cell.runs == [] and "exited with code 5" in broken_cell.note
    assert result.server_status["broken"].startswith("failed to start")
    assert len(stall_cell.runs) == 1
    assert stall_cell.runs[0].problem.startswith("stalled")
    assert stall_cell.rate() is None
    assert "not repeated" in stall_cell.note
