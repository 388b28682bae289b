"""The think-time bookstore of the Early Hints measurement: hints at once, the page late."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from pathlib import Path

import pytest

from h2books.app import create_app
from h2books.app.bookstore import Bookstore
from h2books.bench.thinking import ThinkingStorefront, build_app, parse_args
from h2books.client import Client
from tests.threaded_server import ThreadedServer

THINK = 0.4


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("thinking")


def read_until(stream: ssl.SSLSocket, marker: bytes, received: bytearray) -> None:
    while marker not in received:
        chunk = stream.recv(65536)
        assert chunk, f"closed before {marker!r}: {bytes(received)!r}"
        received += chunk


def test_the_103_goes_out_at_once_and_the_page_after_the_think_time(data_dir: Path) -> None:
    interface = ThinkingStorefront(create_app(data_dir), THINK)
    with ThreadedServer(data_dir, interface) as running:
        raw = socket.create_connection(("127.0.0.1", running.tls_port), timeout=10)
        with running.ssl_context().wrap_socket(raw, server_hostname="localhost") as stream:
            stream.sendall(b"GET /store HTTP/1.1\r\nhost: localhost\r\n\r\n")
            sent = time.monotonic()
            received = bytearray()
            read_until(stream, b"\r\n\r\n", received)
            hinted = time.monotonic() - sent
            read_until(stream, b"</html>", received)
            answered = time.monotonic() - sent
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 103 ")
    assert head.count(b"rel=preload") == 3
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b" 103 " not in rest and b"rel=preload" not in rest  # the hints went out once
    assert hinted < THINK / 2 <= THINK <= answered


def test_with_push_the_assets_are_pushed_once_during_the_think_time(data_dir: Path) -> None:
    async def fetch(running: ThreadedServer) -> tuple[Client, list[bool]]:
        async with Client(running.url, cacert=running.ca, push=True) as client:
            page = await client.get("/store")
            assets = sorted(set(re.findall(r"/static/[\w.]+", page.text)))
            assert len(assets) == 3
            answers = [await client.get(path) for path in assets]
            assert {answer.status for answer in answers} == {200}
            return client, [answer.pushed for answer in answers]

    interface = ThinkingStorefront(create_app(data_dir), THINK)
    with ThreadedServer(data_dir, interface, push=True) as running:
        client, pushed = asyncio.run(fetch(running))
    assert pushed == [True, True, True]
    assert client.pushes_received == 3


def test_other_requests_are_not_held_back(data_dir: Path) -> None:
    async def fetch(running: ThreadedServer) -> tuple[float, float]:
        async with Client(running.url, cacert=running.ca) as client:
            started = time.monotonic()
            page = asyncio.ensure_future(client.get("/store"))
            hello = await client.get("/hello")
            hello_took = time.monotonic() - started
            assert hello.status == 200 and (await page).status == 200
            return hello_took, time.monotonic() - started

    interface = ThinkingStorefront(create_app(data_dir), THINK)
    with ThreadedServer(data_dir, interface) as running:
        hello_took, page_took = asyncio.run(fetch(running))
    assert hello_took < THINK <= page_took


def test_no_think_time_is_the_plain_bookstore(data_dir: Path) -> None:
    assert isinstance(build_app(data_dir, 0.0), Bookstore)
    assert isinstance(build_app(data_dir, 0.2), ThinkingStorefront)
    with pytest.raises(SystemExit):
        parse_args(["--think-ms", "-1"])
    assert parse_args(["--no-early-hints"]).early_hints is False
