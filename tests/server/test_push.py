"""Server push and 103 Early Hints end to end: `h2books serve --push` in a subprocess,
real TLS, and real clients (ours, nghttp, curl, the `h2` library over a socket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import struct
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from h2books.client import Client
from h2books.client.cli import main_crawl
from tests.conftest import ServerProcess, require_tool


@pytest.fixture(scope="module")
def push_server(server: ServerProcess) -> Iterator[ServerProcess]:
    """`serve --push` over the shared server's catalogue (`server` made it)."""
    process = ServerProcess(server.data_dir, "--push", "--no-access-log").start()
    yield process
    process.stop()


def crawl(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main_crawl([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


# -- our client ------------------------------------------------------------------------------


def test_crawl_push_takes_every_book_pushed(
    capsys: pytest.CaptureFixture[str], push_server: ServerProcess
) -> None:
    result = crawl(capsys, push_server.url, "--push", "--cacert", str(push_server.ca))
    assert result["books"] > 0
    assert result["pushed"] == result["books"]  # one request went out: the index
    # Only the index's request head went up; the books' heads came down in PUSH_PROMISEs.
    assert result["wire"]["sent"]["headers"] < 200


def test_crawl_push_in_batches_takes_every_book(
    capsys: pytest.CaptureFixture[str], push_server: ServerProcess
) -> None:
    # The store pushes every book with the index, so a whole first batch may be taken from
    # pushes: with no request in flight, the next batch must still start (it once hung).
    result = crawl(
        capsys, push_server.url, "--push", "--chunked", "--concurrency", "10",
        "--books", "30", "--timeout", "10", "--cacert", str(push_server.ca),
    )  # fmt: skip
    assert result["books"] == 30 and result["pushed"] == 30


def test_pushed_books_are_the_books(push_server: ServerProcess, server: ServerProcess) -> None:
    """Every pushed body equals what a plain request to a server without push returns."""

    async def fetch() -> tuple[dict[str, bytes], dict[str, bytes]]:
        async with Client(push_server.url, cacert=push_server.ca, push=True) as pushing:
            ids = (await pushing.get("/")).json()
            targets = [f"/book?id={i}" for i in ids]
            pushed = await asyncio.gather(*(pushing.get(t) for t in targets))
            assert all(r.pushed for r in pushed)
        async with Client(server.url, cacert=server.ca) as plain:
            requested = await asyncio.gather(*(plain.get(t) for t in targets))
            assert not any(r.pushed for r in requested)
        return (
            {r.target: r.content for r in pushed},
            {r.target: r.content for r in requested},
        )

    pushed, requested = asyncio.run(fetch())
    assert pushed == requested


def test_no_push_without_the_flag_or_without_the_clients_consent(
    capsys: pytest.CaptureFixture[str], server: ServerProcess, push_server: ServerProcess
) -> None:
    off = crawl(capsys, server.url, "--push", "--cacert", str(server.ca))
    assert off["pushed"] == 0 and off["books"] > 0
    declined = crawl(capsys, push_server.url, "--cacert", str(push_server.ca))  # ENABLE_PUSH=0
    assert declined["pushed"] == 0 and declined["books"] == off["books"]


@pytest.mark.parametrize("http2", [True, False], ids=["h2", "h1"])
def test_our_client_sees_the_early_hints_of_the_store(
    push_server: ServerProcess, http2: bool
) -> None:
    async def fetch() -> Any:
        async with Client(push_server.url, cacert=push_server.ca, http2=http2) as client:
            return await client.get("/store")

    page = asyncio.run(fetch())
    assert page.status == 200
    [(status, fields)] = page.informational
    links = [value.decode() for name, value in fields if name == b"link"]
    assert status == 103 and len(links) == 3
    for link in links:
        path = link.split(">")[0].lstrip("<")
        assert path in page.text  # the hints name the page's own assets
        assert "rel=preload" in link


# -- nghttp -------------------------------------------------------------------------------


def nghttp(server: ServerProcess, path: str, *extra: str) -> list[tuple[str, bool]]:
    """(path, pushed) for each response `nghttp -ans` reports."""
    tool = require_tool("nghttp")
    out = subprocess.run(
        [tool, "-ans", *extra, f"{server.url}{path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        match = re.match(r"\s*\d+\s+\+\S+\s+(\*?)\s*\+\S+\s+\S+\s+200\s+\S+\s+(\S+)$", line)
        if match:
            rows.append((match.group(2), match.group(1) == "*"))
    return rows


def test_nghttp_receives_the_stores_assets_pushed(push_server: ServerProcess) -> None:
    rows = nghttp(push_server, "/store")
    pushed = sorted(path for path, was_pushed in rows if was_pushed)
    assert len(pushed) == 3 and all(p.startswith("/static/") for p in pushed)
    assert ("/store", False) in rows


def test_nghttp_receives_books_pushed_within_its_limits(push_server: ServerProcess) -> None:
    rows = nghttp(push_server, "/")
    pushed = [path for path, was_pushed in rows if was_pushed]
    # nghttp's windows (64 KiB) hold the rest back, and its 100 concurrent streams bound
    # how many wait: pushing stops there, never past it.
    assert len(pushed) > 100 and all(p.startswith("/book?id=") for p in pushed)
    assert ("/", False) in rows


def test_nghttp_with_push_disabled_gets_none(push_server: ServerProcess) -> None:
    rows = nghttp(push_server, "/store", "--no-push")
    assert rows and not any(was_pushed for _, was_pushed in rows)


# -- curl ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["--http2", "--http1.1"])
def test_curl_shows_the_103_early_hints(push_server: ServerProcess, version: str) -> None:
    tool = require_tool("curl")
    result = subprocess.run(
        [tool, "-sv", version, "--cacert", str(push_server.ca), f"{push_server.url}/store"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    trace = result.stderr
    status = "HTTP/2 103" if version == "--http2" else "HTTP/1.1 103"
    assert f"< {status}" in trace
    assert trace.index(status) < trace.index("200")
    assert len(re.findall(r"< link: <[^>]+>; rel=preload", trace)) == 3
    assert "<!doctype html>" in result.stdout.lower()


# -- a client that resets every push ------------------------------------------------------


@contextlib.contextmanager
def h2_over_tls(
    server: ServerProcess,
) -> Iterator[tuple[ssl.SSLSocket, h2.connection.H2Connection]]:
    """A TLS socket to `server` with ALPN h2, and an `h2` client connection initiated on it
    (its preface not yet sent)."""
    context = ssl.create_default_context(cafile=str(server.ca))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    with raw, context.wrap_socket(raw, server_hostname="localhost") as sock:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        conn.initiate_connection()
        yield sock, conn


def test_a_client_resetting_every_push_keeps_the_server_healthy(
    push_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    with h2_over_tls(push_server) as (sock, conn):
        authority = f"localhost:{push_server.port}".encode()
        fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority)]
        conn.send_headers(1, [*fields, (b":path", b"/")], end_stream=True)
        sock.sendall(conn.data_to_send())
        resets = index_done = 0
        cancels = b""
        while not index_done:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.PushedStreamReceived):
                    # By hand: h2 may have seen the whole push already in this read.
                    cancels += struct.pack(">BHBBII", 0, 4, 3, 0, event.pushed_stream_id, 8)
                    resets += 1
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == 1:
                    index_done = 1
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                assert not isinstance(event, h2.events.ConnectionTerminated), event
            sock.sendall(conn.data_to_send() + cancels)
            cancels = b""
        assert resets > 100
        # The same connection still serves.
        conn.send_headers(3, [*fields, (b":path", b"/book?id=1")], end_stream=True)
        sock.sendall(conn.data_to_send())
        status = None
        while status is None:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == 3:
                    status = dict(event.headers)[b":status"]
            sock.sendall(conn.data_to_send())
        assert status == b"200"
    # And so does everyone else.
    result = crawl(capsys, push_server.url, "--push", "--cacert", str(push_server.ca))
    assert result["pushed"] == result["books"]


def test_serve_banner_says_push_is_on(push_server: ServerProcess) -> None:
    assert any("push:  on" in line for line in push_server.stderr_lines)


# -- pushes and requests count against different limits ------------------------------------


def test_requests_are_served_while_pushes_hold_every_push_slot(server: ServerProcess) -> None:
    """RFC 9113 §5.1.2: our SETTINGS_MAX_CONCURRENT_STREAMS limits the client's requests, not
    our pushes. With 4 as the limit and 4 pushes stuck on a shut flow-control window, 4 new
    requests are still all served (none refused)."""
    limited = ServerProcess(
        server.data_dir, "--push", "--max-concurrent-streams", "4", "--no-access-log"
    ).start()
    try:
        with h2_over_tls(limited) as (sock, conn):
            # Every stream's window starts shut: pushes get their heads out, then wait.
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
            conn.increment_flow_control_window(1 << 30)
            authority = f"localhost:{limited.port}".encode()
            fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority)]

            def request(stream_id: int, path: bytes) -> None:
                conn.send_headers(stream_id, [*fields, (b":path", path)], end_stream=True)
                conn.increment_flow_control_window(1 << 30, stream_id=stream_id)

            def read_until(done: Callable[[], bool]) -> None:
                while not done():
                    data = sock.recv(65536)
                    assert data, "the server closed the connection"
                    for event in conn.receive_data(data):
                        assert not isinstance(event, h2.events.ConnectionTerminated), event
                        if isinstance(event, h2.events.PushedStreamReceived):
                            pushed.add(event.pushed_stream_id)
                        elif isinstance(event, h2.events.StreamReset):
                            refused.append(event.stream_id)
                        elif isinstance(event, h2.events.StreamEnded):
                            ended.add(event.stream_id)
                        elif isinstance(event, h2.events.DataReceived):
                            conn.acknowledge_received_data(
                                event.flow_controlled_length, event.stream_id
                            )
                    sock.sendall(conn.data_to_send())

            pushed: set[int] = set()
            ended: set[int] = set()
            refused: list[int] = []
            request(1, b"/")
            sock.sendall(conn.data_to_send())
            read_until(lambda: 1 in ended)
            assert len(pushed) == 4 and not pushed & ended  # every push slot held
            requests = [3, 5, 7, 9]
            for stream_id in requests:
                request(stream_id, f"/book?id={stream_id}".encode())
            sock.sendall(conn.data_to_send())
            read_until(lambda: set(requests) <= ended or bool(refused))
            assert refused == []
            assert not pushed & ended  # the pushes were live all along
    finally:
        limited.stop()
