"""`h2books bench` end to end, in a subprocess, as a user (and CI) runs it."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from h2books.bench.cli import cmd_bench, register
from h2books.bench.experiment import DEFAULT_CLIENTS
from tests.bench.conftest import FAKE_SERVER
from tests.conftest import REPO_ROOT, require_tool

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(*args: str, timeout: float = 110) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "h2books.bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


@pytest.mark.slow
def test_quick_run_writes_json_png_and_markdown(tmp_path: Path) -> None:
    require_tool("h2load")
    pytest.importorskip("matplotlib")
    pytest.importorskip("requests")
    out_json, out_png, out_md = tmp_path / "b.json", tmp_path / "b.png", tmp_path / "b.md"
    done = bench(
        "--quick", "--json", str(out_json), "--png", str(out_png), "--markdown", str(out_md)
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out_json.read_text())
    assert data["command"].startswith("h2books bench --quick")
    assert data["repeat"] == 2
    cells = {
        (cell["server"], f"{cell['client']}-{cell['protocol']}"): cell for cell in data["cells"]
    }
    assert set(cells) == {("ours", key) for key in DEFAULT_CLIENTS}
    for key, cell in cells.items():
        assert cell["ok"], (key, cell["errors"])
        assert cell["runs_ok"] == 2
        assert cell["wall_s"]["min"] <= cell["wall_s"]["median"] <= cell["wall_s"]["max"]
        assert cell["client_cpu_us_per_request"]["median"] > 0
        assert cell["speed_vs_ours"] == 1.0
    assert out_png.read_bytes().startswith(PNG_MAGIC)
    markdown = out_md.read_text()
    assert "| server | client |" in markdown
    assert "h2books bench --quick" in markdown
    assert "ours HTTP/2" in done.stdout


def test_a_peer_that_fails_to_start_is_a_marked_cell(tmp_path: Path) -> None:
    out_json = tmp_path / "b.json"
    done = bench(
        "--servers", "ours", "--clients", "ours-h2", "--repeat", "1",
        "--add-server", "broken={python} -c 'import sys; sys.exit(7)'",
        "--json", str(out_json),
    )  # fmt: skip
    # Peers may fail: the run goes on and still succeeds while our server works.
    assert done.returncode == 0, done.stderr
    cells = {cell["server"]: cell for cell in json.loads(out_json.read_text())["cells"]}
    assert cells["ours"]["ok"]
    assert not cells["broken"]["ok"]
    assert "exited with code 7" in cells["broken"]["errors"][0]
    assert "✗" in done.stdout


def test_a_stalling_peer_is_marked_and_bounded(tmp_path: Path) -> None:
    out_json = tmp_path / "b.json"
    done = bench(
        "--servers", "ours", "--clients", "ours-h1", "--repeat", "2", "--timeout", "3",
        "--add-server", f"stall={{python}} {FAKE_SERVER} stall {{port}} {{cert}} {{key}}",
        "--json", str(out_json),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    cells = {cell["server"]: cell for cell in json.loads(out_json.read_text())["cells"]}
    assert cells["stall"]["errors"][0].startswith("not repeated after it stalled")
    assert any(error.startswith("stalled") for error in cells["stall"]["errors"])


@pytest.mark.slow
def test_h2load_mode(tmp_path: Path) -> None:
    require_tool("h2load")
    out_json, out_md = tmp_path / "l.json", tmp_path / "l.md"
    done = bench(
        "--load", "h2load", "--servers", "ours", "--workloads", "h2-1c,h1-1c",
        "--runs", "2", "--requests", "600", "--json", str(out_json), "--markdown", str(out_md),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(out_json.read_text())
    assert [cell["workload"] for cell in data["cells"]] == ["h2-1c", "h1-1c"]
    for cell in data["cells"]:
        assert cell["runs_ok"] == 2 and cell["runs_failed"] == 0
        assert cell["warm_up"]["ok"]
        assert cell["requests_per_s"]["median"] > 0
        for run in cell["runs"]:
            assert run["h2load"]["succeeded"] == run["h2load"]["total"] == 600
    assert data["h2load"].startswith("h2load")
    markdown = out_md.read_text()
    assert "| workload | ours |" in markdown
    assert "h2books bench --load h2load" in markdown


@pytest.mark.slow
def test_asgi_and_wsgi_modes_run_the_apps_on_our_server(tmp_path: Path) -> None:
    require_tool("h2load")
    out_json, out_md = tmp_path / "a.json", tmp_path / "a.md"
    done = bench(
        "--load", "h2load", "--app", "asgi,wsgi", "--servers", "ours", "--workloads",
        "h2-10c,h1-10c", "--runs", "1", "--requests", "4000",
        "--json", str(out_json), "--markdown", str(out_md),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(out_json.read_text())
    cells = {(cell["app"], cell["workload"]): cell for cell in data["cells"]}
    assert set(cells) == {(app, w) for app in ("asgi", "wsgi") for w in ("h2-10c", "h1-10c")}
    for cell in cells.values():
        assert cell["runs_ok"] == 1, cell["problems"]
        assert cell["server_cpu_us_per_request"]["median"] > 0
    assert set(data["servers"]) == {"asgi:ours", "wsgi:ours"}
    assert "AsgiInterface" in data["servers"]["asgi:ours"]["description"]
    assert "| workload | ours (asgi) | ours (wsgi) |" in out_md.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--servers", "ours,nginx"], "unknown server nginx"),
        (["--clients", "curl-h2"], "unknown client curl-h2"),
        (["--load", "h2load", "--workloads", "h3-1c"], "unknown workload h3-1c"),
        (["--add-server", "noequals"], "--add-server needs NAME=COMMAND"),
        (["--add-server", "ours=true"], "is taken"),
        (["--app", "php"], "unknown app php"),
        (["--app", "asgi"], "--app asgi and --app wsgi are for --load h2load"),
        (["--load", "h2load", "--app", "asgi", "--servers", "twisted"], "for --app asgi"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    if "--load" in args:
        require_tool("h2load")
    done = bench(*args, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr


def test_register_adds_the_bench_command() -> None:
    parser = argparse.ArgumentParser(prog="h2books")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--servers", "ours,twisted", "--runs", "3"])
    assert args.handler is cmd_bench
    assert args.quick and args.servers == ["ours", "twisted"] and args.runs == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "--repeat", "0"])


def test_the_offered_names_are_the_real_ones() -> None:
    from h2books.bench.experiment import ALL_CLIENTS
    from h2books.bench.loadtest import WORKLOADS
    from h2books.bench.names import APP_NAMES, CLIENT_KEYS, SERVER_NAMES, WORKLOAD_KEYS
    from h2books.bench.servers import APPS, servers_for

    assert APPS == APP_NAMES
    offered = {name for app in APPS for name in servers_for(app)}
    assert offered == set(SERVER_NAMES)
    assert tuple(ALL_CLIENTS) == CLIENT_KEYS
    assert tuple(WORKLOADS) == WORKLOAD_KEYS


def test_main_command_line_offers_bench() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "h2books", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0
    assert "--load" in done.stdout and "--add-server" in done.stdout
