"""Starting the servers under test, and what happens when one cannot start."""

from __future__ import annotations

import http.client
import ssl
import sys
from pathlib import Path

import pytest

from h2books.bench.processes import detect_pinning
from h2books.bench.servers import (
    ASGI_SERVERS,
    PEERS,
    SERVERS,
    WSGI_SERVERS,
    ServerSpec,
    ServerStartError,
    custom_server,
    start_server,
)
from h2books.bench.workspace import Workspace
from tests.bench.conftest import FAKE_SERVER


def get(url_port: int, target: str, ca: Path) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection("127.0.0.1", url_port, timeout=10, context=context)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("spec", [SERVERS["ours"], *PEERS], ids=lambda spec: spec.name)
def test_every_server_serves_the_same_bookstore(
    spec: ServerSpec, bench_space: Workspace, tmp_path: Path
) -> None:
    if not spec.installed:
        pytest.skip(f"{spec.name} is not installed (pip install 'h2books[peers]')")
    server = start_server(spec, bench_space.paths, detect_pinning(False), tmp_path)
    try:
        book_id = bench_space.book_ids[41]
        status, body = get(server.port, f"/book?id={book_id}", bench_space.paths.ca)
        assert status == 200
        from h2books.bench.peers.catalog import load_bodies

        assert body == load_bodies(bench_space.paths.data_dir).books[book_id]
        status, body = get(server.port, "/book?id=999999999", bench_space.paths.ca)
        assert status == 404
        assert server.alive()
        assert server.cpu_seconds() > 0
    finally:
        server.stop()
    assert not server.alive()


def get_fields(url_port: int, target: str, ca: Path) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection("127.0.0.1", url_port, timeout=10, context=context)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        fields = {name.lower(): value for name, value in response.getheaders()}
        return response.status, fields, response.read()
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("spec", [*ASGI_SERVERS, *WSGI_SERVERS], ids=lambda spec: spec.key)
def test_the_asgi_and_wsgi_bookstores_answer_as_the_native_one_on_every_server(
    spec: ServerSpec, bench_space: Workspace, tmp_path: Path
) -> None:
    from h2books.bench.peers.replies import open_bookstore
    from h2books.http import Request

    if not spec.installed:
        pytest.skip(f"{spec.key} is not installed (pip install 'h2books[peers]')")
    native, _ = open_bookstore(bench_space.paths.data_dir)
    server = start_server(spec, bench_space.paths, detect_pinning(False), tmp_path, timeout=20)
    try:
        for target in (f"/book?id={bench_space.book_ids[41]}", "/", "/book?id=999999999", "/no"):
            path, _, query = target.partition("?")
            expected = native(Request("GET", path, query, []))
            status, fields, body = get_fields(server.port, target, bench_space.paths.ca)
            assert (status, body) == (expected.status, expected.body)
            for name, value in expected.headers:
                assert fields[name.decode()] == value.decode()
        assert server.alive()
    finally:
        server.stop()
        native.close()


def test_a_server_that_exits_is_reported(bench_space: Workspace, tmp_path: Path) -> None:
    spec = custom_server("broken", "{python} -c 'import sys; print(\"no luck\"); sys.exit(3)'")
    with pytest.raises(
        ServerStartError, match=r"failed to start: broken exited with code 3: no luck"
    ):
        start_server(spec, bench_space.paths, detect_pinning(False), tmp_path, timeout=20)


def test_a_server_that_never_answers_times_out(bench_space: Workspace, tmp_path: Path) -> None:
    spec = custom_server("silent", "{python} -c 'import time; time.sleep(60)'")
    with pytest.raises(ServerStartError, match=r"silent did not serve within 1 s"):
        start_server(spec, bench_space.paths, detect_pinning(False), tmp_path, timeout=1)


def test_custom_server_fills_in_the_placeholders(bench_space: Workspace) -> None:
    spec = custom_server(
        "mine", "{python} serve.py --port {port} --cert {cert} --key={key} {data_dir}"
    )
    paths = bench_space.paths
    assert spec.command(4433, paths) == [
        sys.executable, "serve.py", "--port", "4433", "--cert", str(paths.cert),
        f"--key={paths.key}", str(paths.data_dir),
    ]  # fmt: skip
    assert spec.installed


def test_custom_server_can_start(bench_space: Workspace, tmp_path: Path) -> None:
    # The fake server answers GET / as the start-up check asks.
    spec = custom_server("fake", f"{{python}} {FAKE_SERVER} stall {{port}} {{cert}} {{key}}")
    server = start_server(spec, bench_space.paths, detect_pinning(False), tmp_path)
    try:
        assert get(server.port, "/", bench_space.paths.ca) == (200, b'["1", "2"]')
    finally:
        server.stop()


def test_a_peer_that_is_not_installed_says_what_is_missing() -> None:
    spec = ServerSpec("ghost", "not here", lambda port, paths: [], ("no_such_module_h2books",))
    assert not spec.installed
    assert spec.missing() == ["no_such_module_h2books"]
