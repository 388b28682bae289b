"""`h2books crawl` against the real server: every book arrives, as JSON, over h1, h2 and h2c."""

from __future__ import annotations

import gc
import json
import ssl
from typing import Any

import httpx
import pytest

from h2books.client import crawl as crawl_module
from h2books.client.cli import main_crawl
from h2books.client.crawl import check_json
from tests.conftest import ServerProcess


def crawl_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main_crawl([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def index(server: ServerProcess) -> list[str]:
    """The id list, fetched with httpx (independent of our client)."""
    context = ssl.create_default_context(cafile=str(server.ca))
    with httpx.Client(http2=True, verify=context, timeout=10) as client:
        ids: list[str] = client.get(server.url + "/").json()
    assert ids
    return ids


@pytest.mark.parametrize("protocol", ["--http2", "--http1"])
def test_crawl_over_tls(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str], protocol: str
) -> None:
    result = crawl_json(capsys, server.url, protocol, "--cacert", str(server.ca))
    assert result["ok"] is True
    assert result["books"] == len(index)
    assert result["requests"] == len(index) + 1
    assert result["http_version"] == ("HTTP/2" if protocol == "--http2" else "HTTP/1.1")
    assert result["tls"] is True
    assert result["wire"]["connections"] == 1
    assert result["wall_s"] > 0
    assert result["close_s"] >= 0
    assert result["cpu_us_per_request"] > 0


@pytest.mark.parametrize("protocol", ["--http2", "--http1"])
def test_crawl_over_cleartext(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str], protocol: str
) -> None:
    result = crawl_json(capsys, server.http_url, protocol)
    assert result["books"] == len(index)
    assert result["tls"] is False


def test_wire_bytes_show_hpack_against_http1(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    h2 = crawl_json(capsys, server.http_url, "--http2")["wire"]
    h1 = crawl_json(capsys, server.http_url, "--http1")["wire"]
    # The same books arrive whatever the protocol...
    assert h2["received"]["body"] == h1["received"]["body"] > 0
    assert h2["sent"]["body"] == h1["sent"]["body"] == 0
    # ...with far fewer header bytes once HPACK has indexed the repeated fields,
    assert h2["sent"]["headers"] * 2 < h1["sent"]["headers"]
    assert h2["received"]["headers"] < h1["received"]["headers"]
    # while HTTP/2 pays 9 bytes of frame header per frame, and HTTP/1.1 (content-length) none.
    assert h2["sent"]["framing"] >= 9 * (len(index) + 1)
    assert h1["sent"]["framing"] == h1["received"]["framing"] == 0
    for wire in (h1, h2):
        for side in ("sent", "received"):
            counts = wire[side]
            assert counts["total"] == counts["headers"] + counts["body"] + counts["framing"]
    # Uncompressed, HTTP/1.1 heads are their own size; HTTP/2's fields, counted as lines,
    # come to about the same (pseudo-header names against a request line), and HPACK
    # saves most of them in each direction.
    assert h1["sent"]["headers_plain"] == h1["sent"]["headers"]
    assert h1["received"]["headers_plain"] == h1["received"]["headers"]
    for side in ("sent", "received"):
        assert 0.5 < h2[side]["headers_plain"] / h1[side]["headers_plain"] < 1.5
    # Requests repeat all but their path; a response's date, length and etag are literals
    # (encoder.NEVER_INDEXED_VOLATILE), so responses save less, but still most.
    assert h2["sent"]["headers"] < 0.25 * h2["sent"]["headers_plain"]
    assert h2["received"]["headers"] < 0.35 * h2["received"]["headers_plain"]


def test_chunked_mode_and_several_connections(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    result = crawl_json(
        capsys, server.url, "--cacert", str(server.ca), "--chunked", "--connections", "3"
    )
    assert result["books"] == len(index)
    assert result["mode"] == "chunked"
    assert result["wire"]["connections"] == 3


def test_http1_over_several_connections(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    result = crawl_json(
        capsys, server.http_url, "--http1", "--connections", "4", "--concurrency", "8"
    )
    assert result["books"] == len(index)
    assert result["wire"]["connections"] == 4


def test_insecure_skips_verification(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    result = crawl_json(capsys, server.url, "--insecure", "--concurrency", "50")
    assert result["books"] == len(index)


def test_report_prints_the_posts_figures(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    code = main_crawl([server.url, "--cacert", str(server.ca)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{len(index)} books fetched" in out
    for figure in ("wall", "closing", "user", "sys", "CPU", "requests/s", "µs CPU per request"):
        assert figure in out
    for column in ("headers", "bodies", "framing", "sent", "received"):
        assert column in out
    assert "header fields (HPACK)" in out
    saved = [line.split()[-1] for line in out.splitlines() if "(requests)" in line]
    assert len(saved) == 1 and saved[0].endswith("%") and float(saved[0][:-1]) > 50


@pytest.mark.parametrize("protocol", ["--http2", "--http1"])
def test_books_limits_the_crawl_to_the_first_n(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str], protocol: str
) -> None:
    result = crawl_json(capsys, server.http_url, protocol, "--books", "5")
    assert (result["books"], result["requests"]) == (5, 6)  # the index, then 5 books
    assert result["books_listed"] == 5  # asked for as /?books=5


def test_books_beyond_the_index_fetches_every_book(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, index: list[str]
) -> None:
    result = crawl_json(capsys, server.http_url, "--books", str(len(index) + 10))
    assert result["books"] == result["books_listed"] == len(index)


def test_report_says_how_many_books_were_fetched(
    capsys: pytest.CaptureFixture[str], server: ServerProcess
) -> None:
    code = main_crawl([server.http_url, "--books", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"3 books fetched from {server.http_url}")


def test_unknown_ca_is_a_tls_failure(
    capsys: pytest.CaptureFixture[str], server: ServerProcess
) -> None:
    code = main_crawl([server.url])
    _, err = capsys.readouterr()
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "TLS handshake" in lines[0]
    assert "certificate verify failed" in lines[0] or "unable to get local issuer" in lines[0]
    assert "--cacert" in lines[0]


def test_tls_to_the_cleartext_port_is_a_tls_failure(
    capsys: pytest.CaptureFixture[str], server: ServerProcess
) -> None:
    url = server.http_url.replace("http://", "https://")
    code = main_crawl([url, "--insecure", "--request-timeout", "5"])
    _, err = capsys.readouterr()
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "TLS handshake" in err


def test_missing_cacert_file(capsys: pytest.CaptureFixture[str], server: ServerProcess) -> None:
    code = main_crawl([server.url, "--cacert", "/nonexistent/ca.pem"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "CA certificate file not found: /nonexistent/ca.pem" in err


# -- check_json: json.loads' verdict, cheaper -----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "Book", "score": [1, 2.5, null, true]}',
        b"\xef\xbb\xbf" + b'{"title": "with a BOM"}',
        b'  {"title": "whitespace around"}\r\n',
        b'"just a string"',
        b"17",
        '{"title": "Caf\u00e9"}'.encode(),
    ],
)
def test_check_json_accepts_what_json_loads_accepts(body: bytes) -> None:
    check_json(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b'{"title": "Bo',
        b'{"title": "Book"} trailing',
        b'{"title": "Book"}{"title": "Book"}',
        b"{'title': 'single quotes'}",
        b'{"title": "Bo\xff"}',  # not UTF-8
        b"<html></html>",
    ],
)
def test_check_json_rejects_what_json_loads_rejects(body: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        check_json(body)
    try:
        json.loads(body.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except ValueError as expected:
        assert str(caught.value) == str(expected)  # json's own message
    else:  # pragma: no cover - each body above is invalid
        pytest.fail("json.loads accepted it")


def test_check_json_rejects_nesting_too_deep_for_json_loads_as_a_bad_body() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        check_json(b"[" * 100_000)


def test_overlapping_crawls_restore_the_threshold_when_the_last_one_ends() -> None:
    # Two crawls in one loop: the first to end must not restore while the other runs, nor
    # the second restore the first's raised value.
    before = gc.get_threshold()
    gc.set_threshold(800, *before[1:])
    try:
        first = crawl_module._fewer_collections(crawl_module.CRAWL_GC_THRESHOLD)
        second = crawl_module._fewer_collections(crawl_module.CRAWL_GC_THRESHOLD)
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert gc.get_threshold()[0] == crawl_module.CRAWL_GC_THRESHOLD  # the second runs on
        second.__exit__(None, None, None)
        assert gc.get_threshold() == (800, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_a_crawl_runs_with_fewer_collections_and_restores_the_threshold(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: ServerProcess
) -> None:
    """While the crawl runs, the collector's first threshold is CRAWL_GC_THRESHOLD; the
    process's own thresholds come back afterwards, also after a failed crawl."""
    seen: list[tuple[int, int, int]] = []
    check = crawl_module.check_json

    def check_and_record(content: bytes) -> None:
        seen.append(gc.get_threshold())
        check(content)

    monkeypatch.setattr(crawl_module, "check_json", check_and_record)
    before = gc.get_threshold()
    gc.set_threshold(800, *before[1:])
    try:
        crawl_json(capsys, server.url, "--cacert", str(server.ca), "--books", "3")
        assert seen and set(seen) == {(crawl_module.CRAWL_GC_THRESHOLD, *before[1:])}
        assert gc.get_threshold() == (800, *before[1:])
        assert main_crawl([server.url, "--json"]) != 0  # no CA: fails during the crawl
        assert gc.get_threshold() == (800, *before[1:])
    finally:
        gc.set_threshold(*before)
