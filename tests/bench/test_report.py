"""Tables, markdown and charts from results built by hand (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from h2books.bench.experiment import ALL_CLIENTS, Cell, CrawlRun, ExperimentResult
from h2books.bench.h2load import parse_h2load_output
from h2books.bench.loadtest import WORKLOADS, LoadCell, LoadResult, LoadRun
from h2books.bench.processes import Pinning
from h2books.bench.report import (
    _plain,
    experiment_markdown,
    experiment_table,
    header_bytes_table,
    load_markdown,
    load_table,
    write_experiment_png,
    write_load_png,
)
from h2books.bench.servers import SERVERS
from h2books.client.stats import HeaderBytes
from tests.bench.conftest import DATA


def crawl(wall: float) -> CrawlRun:
    return CrawlRun(True, wall=wall, user=wall / 2, sys=wall / 10, requests=3001, server_cpu=0.03)


def experiment() -> ExperimentResult:
    cells = [
        Cell("ours", ALL_CLIENTS["ours-h2"], runs=[crawl(0.1), crawl(0.12), crawl(0.2)]),
        Cell("ours", ALL_CLIENTS["httpx-h2"], runs=[crawl(2.0)]),
        Cell(
            "twisted", ALL_CLIENTS["ours-h2"], runs=[crawl(1.0), CrawlRun(False, problem="GOAWAY")]
        ),
        Cell("twisted", ALL_CLIENTS["httpx-h2"], runs=[crawl(4.0)]),
        Cell("hypercorn", ALL_CLIENTS["httpx-h2"], note="failed to start: boom"),
    ]
    return ExperimentResult(cells, [], 3, Pinning(0, 1), 3000, started=0.0)


def test_experiment_ratios() -> None:
    result = experiment()
    ours_h2, _ours_httpx, twisted_ours, twisted_httpx, _ = result.cells
    # The post's baseline over h2 is Twisted with httpx (4.0 s).
    assert result.speed_vs_post(ours_h2) == pytest.approx(4.0 / 0.12)
    assert result.speed_vs_post(twisted_httpx) == pytest.approx(1.0)
    assert result.speed_vs_ours(twisted_ours) == pytest.approx(0.12 / 1.0)
    assert result.speed_vs_ours(twisted_httpx) == pytest.approx(2.0 / 4.0)


def test_experiment_table_marks_failed_and_partial_cells() -> None:
    table = experiment_table(experiment())
    rows = {(row[0], row[1]): row for row in table.rows}
    assert rows[("ours", "ours HTTP/2")][2] == "0.120 (0.100\u20130.200)"
    assert rows[("ours", "ours HTTP/2")][9] == "33.3\u00d7"
    assert ("twisted", "ours HTTP/2 ⚠ 1/2 ok") in rows
    failed = rows[("hypercorn", "httpx HTTP/2")]
    assert failed[2].startswith("✗ failed to start")
    assert any(note.startswith("✗ hypercorn") for note in table.notes)
    assert any("GOAWAY" in note for note in table.notes)
    assert table.sections == [0, 2, 4]
    text = _plain(table)
    assert "hypercorn" in text and "✗" in text


def test_experiment_markdown_and_png(tmp_path: Path) -> None:
    result = experiment()
    text = experiment_markdown(result, "h2books bench")
    assert "Command: `h2books bench`" in text
    assert text.count("\n| ") >= len(result.cells) + 1
    pytest.importorskip("matplotlib")
    write_experiment_png(tmp_path / "e.png", result)
    assert (tmp_path / "e.png").read_bytes().startswith(b"\x89PNG")


def test_header_bytes_side_by_side_per_protocol() -> None:
    h1 = HeaderBytes("h1", 100, 8000, 8000, 20000, 20000)
    h2 = HeaderBytes("h2", 100, 1600, 10000, 2500, 19000)
    h2_elsewhere = HeaderBytes("h2", 100, 1, 1, 1, 1)
    result = experiment()
    result.cells += [
        Cell("ours", ALL_CLIENTS["ours-h1"], runs=[CrawlRun(False, problem="x"), run_with(h1)]),
        Cell("ours", ALL_CLIENTS["ours-h2"], runs=[run_with(h2), run_with(h2_elsewhere)]),
        Cell("twisted", ALL_CLIENTS["ours-h1"], runs=[run_with(h2_elsewhere)]),
    ]
    assert result.header_bytes() == [h1, h2]
    table = header_bytes_table(result)
    assert table is not None
    assert table.columns == ["octets per request", "HTTP/1.1 (text)", "HTTP/2 (HPACK)"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["request headers, on the wire"] == ["80.0", "16.0"]
    assert rows["request headers, saved"] == ["0.0%", "84.0%"]
    assert rows["response headers, uncompressed"] == ["200.0", "190.0"]
    assert "Header bytes per request" in experiment_markdown(result, "h2books bench")
    assert result.as_dict()["header_bytes"][1] == h2.as_dict()
    assert header_bytes_table(experiment()) is None  # no crawl of ours counted them


def run_with(headers: HeaderBytes) -> CrawlRun:
    run = crawl(0.1)
    run.headers = headers
    return run


def load_run(rate: float, ok: bool = True) -> LoadRun:
    return LoadRun(ok, rate, 30000 / rate, 30000, 0.9, "" if ok else "2 of 30000 succeeded")


def load_run_failed(rate: float) -> LoadRun:
    # A run that h2load reported on, with failures: only such runs have a rate to show.
    report = parse_h2load_output((DATA / "h2load-h2-connection-closed.txt").read_text())
    return LoadRun(False, rate, 1.0, 30000, 0.5, "1001 of 30000 succeeded", report)


def load() -> LoadResult:
    h2 = WORKLOADS["h2-1c"]
    cells = [
        LoadCell("ours", h2, runs=[load_run(30000), load_run(32000), load_run(31000)]),
        LoadCell("twisted", h2, runs=[load_run(2000), load_run(2200, ok=False)]),
        LoadCell("granian", h2, note="failed to start: no"),
        LoadCell("hypercorn", h2, runs=[load_run_failed(2500), load_run_failed(3100)]),
    ]
    return LoadResult(
        cells,
        {"ours": "ok", "twisted": "ok", "granian": "failed to start: no", "hypercorn": "ok"},
        {"ours": SERVERS["ours"].versions()},
        {},
        3,
        Pinning(None, None),
        3000,
        started=0.0,
        command="h2books bench --load h2load",
    )


def test_load_ratios_and_table() -> None:
    result = load()
    ours, twisted, granian, hypercorn = result.cells
    assert result.ours_over(twisted) == pytest.approx(31000 / 2000)
    assert result.ours_over(ours) == pytest.approx(1.0)
    assert result.ours_over(granian) is None
    table = load_table(result)
    assert table.rows[0][2] == "31,000 (30,000\u201332,000)"
    assert table.rows[1][0] == ""  # the workload is named once
    assert table.rows[1][3] == "1/2"
    # Paired by round: only round 1 counted for Twisted (30,000 / 2,000).
    paired = result.ours_over_per_round(twisted)
    assert paired is not None and paired.count == 1 and paired.median == pytest.approx(15.0)
    assert table.rows[1][6] == "15.0\u00d7 (15.00\u201315.00)"
    assert result.ours_over_per_round(ours) is None
    assert table.rows[2][2].startswith("✗ failed to start")
    assert any("run 2: 2 of 30000 succeeded" in note for note in table.notes)
    # No run of Hypercorn's counted: its failed runs' rate is shown, bracketed, not counted.
    assert hypercorn.rate() is None
    assert result.ours_over(hypercorn) is None
    assert result.ratio_to_failed(hypercorn) == pytest.approx(31000 / 2800)
    assert table.rows[3][2] == "✗ (2,800 (2,500\u20133,100))"
    assert table.rows[3][5] == "(11.1\u00d7)"
    assert table.rows[3][6] == "\u2013"
    assert any(
        note.startswith("✗ hypercorn h2-1c: all 2 runs: 1001 of 30000") for note in table.notes
    )


def test_load_markdown_and_png(tmp_path: Path) -> None:
    text = load_markdown(load())
    assert "| workload | ours | twisted | granian | hypercorn |" in text
    assert "| h2-1c | 31,000 | 2,000 (ours 15.5\u00d7) | ✗ | ✗ (2,800, ours 11.1\u00d7) |" in text
    assert "granian: failed to start: no" in text
    pytest.importorskip("matplotlib")
    write_load_png(tmp_path / "l.png", load())
    assert (tmp_path / "l.png").read_bytes().startswith(b"\x89PNG")
