"""The client process's own failures come back as one JSON line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from h2books.bench.client_main import main
from h2books.client.stats import HeaderBytes
from tests.conftest import ServerProcess


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(list(args))
    lines = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(lines[-1])


def test_requests_has_no_http2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("requests")
    code, report = run(
        capsys, "requests", "https://127.0.0.1:1", "--http2", "--cacert", str(tmp_path)
    )
    assert code == 1
    assert report == {"ok": False, "error": "requests speaks HTTP/1.1 only"}


@pytest.mark.parametrize("client", ["ours", "requests", "httpx"])
def test_refused_connection(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, client: str
) -> None:
    if client != "ours":
        pytest.importorskip(client)
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    code, report = run(capsys, client, "https://127.0.0.1:1", "--no-http2", "--cacert", str(ca))
    assert code == 1
    assert report["ok"] is False
    assert isinstance(report["error"], str) and report["error"]


@pytest.mark.parametrize(("flag", "protocol"), [("--http2", "h2"), ("--no-http2", "h1")])
def test_ours_reports_its_header_bytes(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, flag: str, protocol: str
) -> None:
    code, report = run(capsys, "ours", server.url, flag, "--cacert", str(server.ca))
    assert code == 0, report
    assert isinstance(report["headers"], dict)
    headers = HeaderBytes.from_dict(report["headers"])
    assert headers.protocol == protocol
    assert headers.requests == report["requests"]
    if protocol == "h1":
        assert headers.sent == headers.sent_plain > 0
        assert headers.received == headers.received_plain > 0
    else:
        assert 0 < headers.sent < headers.sent_plain / 4
        # A response's date, length and etag stay literals (encoder.NEVER_INDEXED_VOLATILE).
        assert 0 < headers.received < headers.received_plain * 0.35
