"""The answer: `h2books bench --rtt ...` runs h1 (1 and 6 connections), h2, h2 + push and h3
side by side through the emulated link, with the books per condition, a table and a chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from h2books.bench.answer import ANSWER_CLIENT_KEYS, books_for, condition_text
from h2books.bench.cli import build_parser
from h2books.bench.client_main import main as client_main
from h2books.bench.command import _answer_mode
from h2books.bench.experiment import ALL_CLIENTS
from h2books.netem.conditions import Conditions
from tests.bench.test_cli import PNG_MAGIC, bench
from tests.netem.conftest import require_namespaces


@pytest.mark.parametrize(
    ("rtt", "books"), [(0.0, 3000), (0.010, 2000), (0.050, 400), (0.150, 133), (100.0, 1)]
)
def test_books_per_condition_keep_one_rtt_per_book_near_the_budget(rtt: float, books: int) -> None:
    assert books_for(Conditions(rtt=rtt, loss=0.01), 3000) == books
    assert books_for(Conditions(rtt=rtt), 50) == min(books, 50)


@pytest.mark.parametrize(
    ("argv", "answer"),
    [
        (["--rtt", "50ms"], True),
        (["--loss", "1%"], True),
        (["--rtt", "0,10", "--books", "5"], True),
        ([], False),
        (["--rtt", "50ms", "--clients", "ours-h1"], False),
        (["--rtt", "50ms", "--servers", "ours"], False),
        (["--rtt", "50ms", "--load", "h2load"], False),
    ],
)
def test_network_conditions_alone_ask_for_the_answer(argv: list[str], answer: bool) -> None:
    assert _answer_mode(build_parser().parse_args(argv)) is answer


def test_every_variant_is_our_client() -> None:
    specs = [ALL_CLIENTS[key] for key in ANSWER_CLIENT_KEYS]
    assert {spec.name for spec in specs} == {"ours"}
    assert [(s.protocol, s.connections, s.push) for s in specs] == [
        ("h1", 1, False),
        ("h1", 6, False),
        ("h2", 1, False),
        ("h2", 1, True),
        ("h3", 1, False),
    ]
    assert ALL_CLIENTS["ours-h1x6"].label == "ours HTTP/1.1 \u00d76 connections"
    assert ALL_CLIENTS["ours-h2-push"].label == "ours HTTP/2 + push"


def test_condition_text_drops_how_the_link_is_made() -> None:
    title = "RTT 50 ms, 1% loss each way (emulated link: namespaces + TUN)"
    assert condition_text(title) == "RTT 50 ms, 1% loss each way"


@pytest.mark.parametrize("option", [["--push"], ["--connections", "6"], ["--http3"]])
def test_only_our_client_takes_our_options(option: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        client_main(["httpx", "https://127.0.0.1:1", "--cacert", str(tmp_path), *option])
    assert caught.value.code == 2


@pytest.mark.slow
def test_answer_runs_every_variant_through_the_link(tmp_path: Path) -> None:
    """Each variant crawls 10 books at 5 ms RTT: the table's row, the JSON and the chart."""
    require_namespaces()
    pytest.importorskip("matplotlib")
    pytest.importorskip("aioquic")
    out_json, out_png, out_md = tmp_path / "a.json", tmp_path / "a.png", tmp_path / "a.md"
    done = bench(
        "--rtt", "5ms", "--books", "10", "--repeat", "1", "--no-pin",
        "--json", str(out_json), "--png", str(out_png), "--markdown", str(out_md),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "RTT 5 ms: 10 books per crawl" in done.stderr
    row = next(line for line in done.stdout.splitlines() if "RTT 5 ms" in line)
    for heading in ("h1, 1 connection", "h1, 6 connections", "h2 + push", "h3 (QUIC)"):
        assert heading in done.stdout
    assert row.count("\u00d7") == 4  # every variant but the baseline, against it
    assert f"chart: {out_png}" in done.stdout
    assert out_png.read_bytes().startswith(PNG_MAGIC)
    data = json.loads(out_json.read_text())
    assert data["books_by_condition"] == {"rtt5ms": 10}
    assert [cell["key"] for cell in data["cells"]] == list(ANSWER_CLIENT_KEYS)
    versions = {"h1": "HTTP/1.1", "h2": "HTTP/2", "h3": "HTTP/3"}
    for cell in data["cells"]:
        assert cell["ok"], cell["errors"]
        assert cell["condition"]["key"] == "rtt5ms"
        (run,) = cell["runs"]
        assert run["requests"] == 11  # the index, then the first 10 books
        assert run["http_version"] == versions[cell["protocol"]]
    pushed = [cell["runs"][0]["pushed"] for cell in data["cells"]]
    assert pushed == [0, 0, 0, 10, 0]  # only the push variant, and all of its books
    assert "### Every cell" in out_md.read_text()
