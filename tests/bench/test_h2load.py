"""Reading h2load's report (recorded from real runs, and live), and building its command."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.bench.h2load import (
    H2loadParseError,
    h2load_command,
    parse_h2load_output,
    write_uri_list,
)
from h2books.bench.processes import detect_pinning
from h2books.bench.servers import SERVERS, start_server
from h2books.bench.workspace import Workspace
from tests.bench.conftest import DATA
from tests.conftest import require_tool


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_successful_h2_run_on_ten_connections() -> None:
    report = parse_h2load_output(recorded("h2load-h2-10c.txt"))
    assert report.duration == pytest.approx(0.03156)
    assert report.requests_per_second == pytest.approx(95048.00)
    assert (report.total, report.succeeded, report.failed) == (3000, 3000, 0)
    assert report.status_2xx == 3000
    assert report.protocol == "h2"
    assert (report.traffic_bytes, report.header_bytes, report.data_bytes) == (
        769710,
        155430,
        559790,
    )
    assert report.all_succeeded
    assert report.problem() == ""


def test_successful_h1_run() -> None:
    report = parse_h2load_output(recorded("h2load-h1-1c.txt"))
    assert report.protocol == "http/1.1"
    assert report.duration == pytest.approx(0.24746)
    assert report.total == report.succeeded == 2000
    assert report.all_succeeded


def test_duration_in_seconds() -> None:
    report = parse_h2load_output(recorded("h2load-h2-seconds.txt"))
    assert report.duration == pytest.approx(1.79)
    assert report.requests_per_second == pytest.approx(2229.74)


def test_connection_closed_midway_does_not_count() -> None:
    # A peer that closed its connection after 1000 requests: h2load still exits 0.
    report = parse_h2load_output(recorded("h2load-h2-connection-closed.txt"))
    assert (report.total, report.succeeded, report.failed, report.errored) == (
        3000,
        1001,
        1999,
        1999,
    )
    assert not report.all_succeeded
    assert report.problem() == "1001 of 3000 succeeded, 1999 failed, 1999 errored"


def test_refused_connection() -> None:
    report = parse_h2load_output(recorded("h2load-refused.txt"))
    assert report.protocol == ""
    assert report.succeeded == 0
    assert report.problem().startswith("0 of 100 succeeded")


def test_answers_without_a_readable_status_line() -> None:
    # Recorded against a server whose status line has an empty reason phrase, as Hypercorn's.
    report = parse_h2load_output(recorded("h2load-h1-empty-reason.txt"))
    assert (report.done, report.succeeded, report.status_2xx) == (10, 0, 0)
    assert report.problem() == (
        "0 of 10 succeeded, 10 failed, no status code read from any response"
    )


def test_non_2xx_answers_do_not_count() -> None:
    text = recorded("h2load-h1-1c.txt").replace("2000 2xx, 0 3xx, 0 4xx", "1990 2xx, 0 3xx, 10 4xx")
    report = parse_h2load_output(text)
    assert not report.all_succeeded
    assert "10 non-2xx" in report.problem()


@pytest.mark.parametrize(
    "text",
    ["", "h2load: command not found", "starting benchmark...\n", "finished in 1.0ms, 5 req/s\n"],
)
def test_not_a_report(text: str) -> None:
    with pytest.raises(H2loadParseError):
        parse_h2load_output(text)


@given(st.text(max_size=400))
def test_any_text_parses_or_raises_only_the_parse_error(text: str) -> None:
    with contextlib.suppress(H2loadParseError):
        parse_h2load_output(text)


@given(
    duration_ms=st.floats(min_value=0.01, max_value=999.99),
    total=st.integers(min_value=1, max_value=10**7),
    data=st.data(),
)
def test_report_figures_round_trip(duration_ms: float, total: int, data: st.DataObject) -> None:
    succeeded = data.draw(st.integers(min_value=0, max_value=total))
    text = (
        f"finished in {duration_ms:.2f}ms, 1234.56 req/s, 1.00MB/s\n"
        f"requests: {total} total, {total} started, {total} done, {succeeded} succeeded, "
        f"{total - succeeded} failed, {total - succeeded} errored, 0 timeout\n"
        f"status codes: {succeeded} 2xx, 0 3xx, 0 4xx, 0 5xx\n"
    )
    report = parse_h2load_output(text)
    assert report.duration == pytest.approx(float(f"{duration_ms:.2f}") / 1000)
    assert (report.total, report.succeeded) == (total, succeeded)
    assert report.all_succeeded == (succeeded == total)


def test_command_follows_the_method(tmp_path: Path) -> None:
    uris = tmp_path / "uris.txt"
    h2 = h2load_command(uris, http1=False, requests=30000, connections=1, streams=100)
    assert h2 == ["h2load", "-n", "30000", "-c", "1", "-m", "100", "-i", str(uris)]
    h1 = h2load_command(uris, http1=True, requests=10000, connections=1, streams=1)
    assert h1[:2] == ["h2load", "--h1"]


def test_uri_list_covers_every_id(tmp_path: Path) -> None:
    path = write_uri_list(tmp_path / "uris.txt", "https://127.0.0.1:8443/", ["1", "2", "30"])
    assert path.read_text().splitlines() == [
        "https://127.0.0.1:8443/book?id=1",
        "https://127.0.0.1:8443/book?id=2",
        "https://127.0.0.1:8443/book?id=30",
    ]


def test_live_h2load_report_against_our_server(bench_space: Workspace, tmp_path: Path) -> None:
    h2load = require_tool("h2load")
    server = start_server(SERVERS["ours"], bench_space.paths, detect_pinning(False), tmp_path)
    try:
        uris = write_uri_list(tmp_path / "uris.txt", server.url, bench_space.book_ids)
        for http1, protocol in ((False, "h2"), (True, "http/1.1")):
            command = h2load_command(
                uris, http1=http1, requests=500, connections=2, streams=10, executable=h2load
            )
            output = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
            report = parse_h2load_output(output)
            assert report.protocol == protocol
            assert report.total == report.succeeded == report.status_2xx == 500
            assert report.requests_per_second > 0
    finally:
        server.stop()
