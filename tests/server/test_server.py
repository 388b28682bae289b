"""The whole server against real peers: h2load, httpx, curl; shutdown; workers; access log."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.attacks.support import cpu_seconds, wait_for
from tests.conftest import ServerProcess, require_tool


def write_uris(path: Path, base: str, count: int = 3000) -> Path:
    path.write_text("\n".join(f"{base}/book?id={i}" for i in range(1, count + 1)) + "\n")
    return path


def h2load(*args: str, timeout: float = 240) -> dict[str, int]:
    exe = require_tool("h2load")
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    out = done.stdout
    match = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
        out,
    )
    assert match, out + done.stderr
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert status, out
    total, _, done_n, ok, failed, errored = map(int, match.groups())
    return {
        "total": total,
        "done": done_n,
        "succeeded": ok,
        "failed": failed,
        "errored": errored,
        "2xx": int(status.group(1)),
    }


def test_h2load_tls_10_connections(server: ServerProcess, tmp_path: Path) -> None:
    uris = write_uris(tmp_path / "uris.txt", f"https://127.0.0.1:{server.port}")
    result = h2load("-n", "30000", "-c", "10", "-m", "100", "-i", str(uris))
    assert result["succeeded"] == 30000 and result["2xx"] == 30000, result


def test_h2load_h2c_prior_knowledge(server: ServerProcess, tmp_path: Path) -> None:
    uris = write_uris(tmp_path / "uris.txt", f"http://127.0.0.1:{server.http_port}")
    result = h2load("-n", "30000", "-c", "10", "-m", "100", "-i", str(uris))
    assert result["succeeded"] == 30000 and result["2xx"] == 30000, result


def test_h2load_http11_keepalive(server: ServerProcess, tmp_path: Path) -> None:
    uris = write_uris(tmp_path / "uris.txt", f"https://127.0.0.1:{server.port}")
    result = h2load("--h1", "-n", "10000", "-c", "10", "-m", "1", "-i", str(uris))
    assert result["succeeded"] == 10000 and result["2xx"] == 10000, result


def test_h2load_http11_pipelined(server: ServerProcess, tmp_path: Path) -> None:
    uris = write_uris(tmp_path / "uris.txt", f"http://127.0.0.1:{server.http_port}")
    result = h2load("--h1", "-n", "5000", "-c", "2", "-m", "10", "-i", str(uris))
    assert result["succeeded"] == 5000 and result["2xx"] == 5000, result


def test_httpx_http2(server: ServerProcess) -> None:
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=str(server.ca))
    ) as client:
        index = client.get(f"{server.url}/")
        assert index.http_version == "HTTP/2"
        assert index.headers["content-type"] == "application/json; charset=utf-8"
        ids = index.json()
        assert len(ids) == 3000
        book = client.get(f"{server.url}/book", params={"id": ids[41]})
        assert book.status_code == 200 and "title" in book.json()
        assert client.get(f"{server.url}/book", params={"id": "999999"}).status_code == 404
        assert client.get(f"{server.url}/book").status_code == 400
        etag = book.headers["etag"]
        again = client.get(f"{server.url}/book?id={ids[41]}", headers={"if-none-match": etag})
        assert again.status_code == 304 and again.content == b""
        head = client.head(f"{server.url}/book?id=1")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(
            client.get(f"{server.url}/book?id=1").content
        )
        posted = client.post(f"{server.url}/book?id=1", content=b"x" * 100_000)
        assert posted.status_code == 405 and "GET" in posted.headers["allow"]


def test_httpx_http11(server: ServerProcess) -> None:
    with httpx.Client(
        http2=False, verify=ssl.create_default_context(cafile=str(server.ca))
    ) as client:
        r = client.get(f"{server.url}/book?id=5")
        assert r.http_version == "HTTP/1.1" and r.status_code == 200
        assert r.headers["server"] == "h2books" and "date" in r.headers


def test_access_log_shows_protocol(server: ServerProcess) -> None:
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=str(server.ca))
    ) as client:
        body = client.get(f"{server.url}/hello", headers={"user-agent": "log-test/1"}).content
    line_re = re.compile(
        r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /hello HTTP/2\.0" 200 '
        + str(len(body))
        + r' "-" "log-test/1"$'
    )
    # The line is written in the loop iteration after the response; the pipe adds the rest.
    logged = wait_for(
        lambda: any(line_re.match(line.rstrip("\n")) for line in server.stdout_lines), 5
    )
    assert logged, "no access-log line matched; last lines: " + "".join(server.stdout_lines[-5:])


def test_sigterm_under_load_loses_nothing(fresh_server: ServerProcess, tmp_path: Path) -> None:
    """SIGTERM while h2load runs: every request the server accepted is answered in full."""
    fresh_server.start()
    assert fresh_server.proc is not None
    pid = fresh_server.proc.pid
    exe = require_tool("h2load")
    uris = write_uris(tmp_path / "uris.txt", f"https://127.0.0.1:{fresh_server.port}")
    idle_cpu = cpu_seconds(pid)
    load = subprocess.Popen(
        [exe, "-n", "200000", "-c", "4", "-m", "50", "-i", str(uris)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Under load: the server has spent a second of CPU on h2load's requests.
    assert wait_for(lambda: cpu_seconds(pid) - idle_cpu > 1.0, timeout=30), "no load came"
    fresh_server.signal(signal.SIGTERM)
    assert fresh_server.proc.wait(20) == 0
    out, _ = load.communicate(timeout=60)
    match = re.search(r"(\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
    assert match, out
    started, done, succeeded, _failed = map(int, match.groups())
    assert succeeded > 0
    # h2load counts requests it never sent after the GOAWAY as failed. Of those it sent, only
    # streams that crossed our final GOAWAY (above its last-stream-id, at most the in-flight
    # window of each connection) may be refused, for a retry; every other one is answered.
    assert started == done, out
    assert started - succeeded <= 4 * 50, out
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    assert status and int(status.group(1)) == succeeded, out


def test_workers_share_one_port(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", "--workers", "2", "--no-access-log").start()
    try:
        with httpx.Client(
            http2=True, verify=ssl.create_default_context(cafile=str(process.ca))
        ) as client:
            for i in range(1, 21):
                assert client.get(f"{process.url}/book?id={i}").status_code == 200
        assert process.proc is not None
        children = (
            Path(f"/proc/{process.proc.pid}/task/{process.proc.pid}/children").read_text().split()
        )
        assert len(children) == 2
    finally:
        assert process.stop() == 0


def test_port_in_use_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "h2books",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port}" in done.stderr and "already in use" in done.stderr
    assert "Traceback" not in done.stderr


def _udp_port_whose_tcp_twin_is_free() -> socket.socket:
    """A bound UDP socket whose port number is free over TCP too. The system picks the UDP
    port; the TCP port of that number may be another test's connection, so pick again."""
    for _ in range(50):
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        taken.bind(("127.0.0.1", 0))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", taken.getsockname()[1]))
            except OSError:
                taken.close()
                continue
        return taken
    raise AssertionError("no UDP port whose TCP twin is free in 50 tries")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_udp_port_in_use_is_one_line_error_before_the_banner(tmp_path: Path, workers: str) -> None:
    # --http3 serves QUIC on the HTTPS port number over UDP: that port taken (by another
    # server still draining, say) must be told as a TCP one is, not as a worker's traceback.
    with _udp_port_whose_tcp_twin_is_free() as taken:
        port = taken.getsockname()[1]
        serve = ["serve", "--http3", "--port", str(port), "--workers", workers]
        done = subprocess.run(
            [sys.executable, "-m", "h2books", *serve, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"h2books: error: UDP port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "Traceback" not in done.stderr and "serving" not in done.stderr


def test_missing_certificate_is_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "h2books",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--certfile",
            str(tmp_path / "nope.pem"),
            "--keyfile",
            str(tmp_path / "nope-key.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "certificate file not found" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_data_dir_is_one_line_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "h2books", "serve", "--port", "0", "--data-dir", str(not_a_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "data directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_index_is_the_catalogue(server: ServerProcess) -> None:
    with httpx.Client(
        http2=True, verify=ssl.create_default_context(cafile=str(server.ca))
    ) as client:
        raw = client.get(f"{server.url}/").content
        ids = json.loads(raw)
        book = client.get(f"{server.url}/book?id={ids[-1]}").json()
    # The post's format: json.dumps of the id list, default separators.
    assert raw == json.dumps(ids).encode()
    assert set(book) <= {"title", "author", "url", "score", "vote_count"}


def test_one_connection_carries_a_million_requests(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    """Hypercorn closes a connection after 1000 requests; ours keeps going, in flat memory."""
    fresh_server.start()
    uris = write_uris(tmp_path / "uris.txt", f"https://127.0.0.1:{fresh_server.port}")
    h2load("-n", "20000", "-c", "1", "-m", "100", "-i", str(uris))  # warm up the allocator
    before = fresh_server.rss_kib()
    result = h2load("-n", "1000000", "-c", "1", "-m", "100", "-i", str(uris), timeout=600)
    after = fresh_server.rss_kib()
    assert result["succeeded"] == 1_000_000 and result["2xx"] == 1_000_000, result
    assert after - before < 5 * 1024, f"RSS grew from {before} KiB to {after} KiB"
