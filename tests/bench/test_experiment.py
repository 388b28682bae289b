"""The crawl experiment's cells, including the ones a misbehaving server turns into failures."""

from __future__ import annotations

import time

import pytest

from h2books.bench.experiment import ALL_CLIENTS, ExperimentConfig, run_experiment
from h2books.bench.processes import detect_pinning
from h2books.bench.servers import SERVERS, ServerSpec, custom_server
from h2books.bench.workspace import Workspace
from tests.bench.conftest import FAKE_SERVER


def fake(mode: str) -> ServerSpec:
    return custom_server(mode, f"{{python}} {FAKE_SERVER} {mode} {{port}} {{cert}} {{key}}")


def run(space: Workspace, servers: list[ServerSpec], clients: list[str], **options: object):  # type: ignore[no-untyped-def]
    config = ExperimentConfig(
        servers=servers,
        clients=[ALL_CLIENTS[key] for key in clients],
        warm_up=False,
        **options,  # type: ignore[arg-type]
    )
    steps: list[int] = []
    result = run_experiment(config, space, detect_pinning(), lambda _, n: steps.append(n))
    return result, sum(steps)


def test_our_server_with_our_clients(bench_space: Workspace) -> None:
    result, steps = run(bench_space, [SERVERS["ours"]], ["ours-h1", "ours-h2", "ours-h3"], repeat=2)
    assert steps == 6
    for key, version in (("ours-h1", "HTTP/1.1"), ("ours-h2", "HTTP/2"), ("ours-h3", "HTTP/3")):
        cell = result.cell("ours", key)
        assert cell is not None and not cell.failed
        assert len(cell.ok_runs) == 2
        for crawl in cell.ok_runs:
            assert crawl.requests == len(bench_space.book_ids) + 1
            assert crawl.http_version == version
            assert crawl.wall > 0 and crawl.server_cpu > 0
        assert result.speed_vs_ours(cell) == 1.0
        assert result.speed_vs_post(cell) is None  # no Twisted in this run
    assert [outcome.status for outcome in result.servers] == ["ok"]


def test_a_peer_that_fails_to_start_becomes_marked_cells(bench_space: Workspace) -> None:
    broken = custom_server("broken", "{python} -c 'import sys; sys.exit(3)'")
    result, steps = run(bench_space, [broken, SERVERS["ours"]], ["ours-h2"], repeat=2)
    cell = result.cell("broken", "ours-h2")
    assert cell is not None and cell.failed and cell.runs == []
    assert "failed to start" in cell.note and "code 3" in cell.note
    assert result.servers[0].status.startswith("failed to start")
    # ...and the run went on with the next server.
    ours = result.cell("ours", "ours-h2")
    assert ours is not None and len(ours.ok_runs) == 2
    assert steps == 4
    data = result.as_dict()
    assert data["cells"][0]["ok"] is False
    assert "failed to start" in data["cells"][0]["errors"][0]


def test_a_peer_that_stalls_is_not_repeated(bench_space: Workspace) -> None:
    start = time.monotonic()
    result, steps = run(bench_space, [fake("stall")], ["ours-h1"], repeat=3, client_timeout=3.0)
    cell = result.cell("stall", "ours-h1")
    assert cell is not None and cell.failed
    assert len(cell.runs) == 1
    assert cell.runs[0].problem.startswith("stalled")
    assert "not repeated" in cell.note
    assert steps == 3
    assert time.monotonic() - start < 30


def test_a_peer_that_crashes_mid_crawl(bench_space: Workspace) -> None:
    result, _ = run(bench_space, [fake("crash")], ["ours-h1"], repeat=2, client_timeout=20.0)
    cell = result.cell("crash", "ours-h1")
    assert cell is not None and cell.failed
    assert "server died" in cell.runs[0].problem and "code 3" in cell.runs[0].problem
    assert cell.runs[1].problem.startswith("server down")
    assert result.servers[0].status.startswith("died")


def test_a_peer_that_is_not_installed(bench_space: Workspace) -> None:
    ghost = ServerSpec("ghost", "not here", lambda port, paths: [], ("no_such_module_h2books",))
    result, steps = run(bench_space, [ghost], ["ours-h2", "requests-h1"], repeat=2)
    assert steps == 4
    for key in ("ours-h2", "requests-h1"):
        cell = result.cell("ghost", key)
        assert cell is not None and cell.failed
        assert cell.note == "not installed (no no_such_module_h2books)"


@pytest.mark.parametrize("key", ["requests-h1", "httpx-h2"])
def test_the_posts_clients_against_our_server(bench_space: Workspace, key: str) -> None:
    pytest.importorskip(key.split("-")[0])
    result, _ = run(bench_space, [SERVERS["ours"]], [key], repeat=1)
    cell = result.cell("ours", key)
    assert cell is not None and not cell.failed, cell.errors
    assert cell.ok_runs[0].requests == len(bench_space.book_ids) + 1
