"""`h2books serve main:app` and `h2books.run(app)` as a user runs them: a subprocess in a
directory holding the app, real TLS, curl over HTTP/2 and HTTP/1.1, stopped by SIGINT."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from h2books.cli import UsageError, _app_to_serve, build_parser, serve_config
from tests.conftest import REPO_ROOT, require_tool

MAIN_PY = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def home():
        return {"hello": "world"}

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        return {"item_id": item_id}
    """
)

BANNER = re.compile(r"serving (.+) on https://localhost:(\d+)/")


class Served:
    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.served = ""
        self.port = 0
        self.ca = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if match := BANNER.search(line):
                self.served, self.port = match.group(1), int(match.group(2))
            if match := re.search(r"--cacert (\S+)", line):
                self.ca = match.group(1)
            if "stop: Ctrl+C" in line:
                self.ready.set()
        self.ready.set()

    def curl(self, flag: str, path: str) -> str:
        done = subprocess.run(
            [
                require_tool("curl"),
                "-sS",
                flag,
                "--cacert",
                self.ca,
                f"https://localhost:{self.port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.mark.slow
def test_serve_main_app(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(MAIN_PY)
    served = Served(
        [
            sys.executable,
            "-m",
            "h2books",
            "serve",
            "main:app",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--no-access-log",
        ],
        tmp_path,
    )
    try:
        assert served.ready.wait(60), "".join(served.lines)
        assert served.served == "main:app (ASGI)", "".join(served.lines)
        assert served.curl("--http2", "/") == '{"hello":"world"}'
        assert served.curl("--http1.1", "/items/7") == '{"item_id":7}'
    finally:
        code = served.interrupt()
    assert code == 0, "".join(served.lines)


FLASK_PY = textwrap.dedent(
    """
    from flask import Flask, request

    app = Flask(__name__)

    @app.get("/")
    def home():
        return {"hello": "flask"}

    @app.post("/echo")
    def echo():
        return {"size": len(request.get_data())}
    """
)


@pytest.mark.slow
def test_serve_a_flask_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_PY)
    served = Served(
        [
            sys.executable,
            "-m",
            "h2books",
            "serve",
            "app:app",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "data"),
            "--no-access-log",
        ],
        tmp_path,
    )
    try:
        assert served.ready.wait(60), "".join(served.lines)
        assert served.served == "app:app (WSGI)", "".join(served.lines)
        assert served.curl("--http2", "/") == '{"hello":"flask"}\n'
        assert served.curl("--http1.1", "/") == '{"hello":"flask"}\n'
    finally:
        code = served.interrupt()
    assert code == 0, "".join(served.lines)


@pytest.mark.slow
def test_run_from_a_script(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(MAIN_PY)
    (tmp_path / "script.py").write_text(
        "import sys, h2books\nfrom main import app\n"
        f"sys.exit(h2books.run(app, port=0, data_dir={str(tmp_path / 'data')!r}, access_log=False))\n"
    )
    served = Served([sys.executable, "script.py"], tmp_path)
    try:
        assert served.ready.wait(60), "".join(served.lines)
        assert "(ASGI)" in served.served
        assert served.curl("--http2", "/items/3") == '{"item_id":3}'
    finally:
        code = served.interrupt()
    assert code == 0, "".join(served.lines)


def test_an_app_that_cannot_be_imported_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "h2books", "serve", "nowhere:app", "--data-dir", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "h2books: error: cannot import 'nowhere': no such module"


def _serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_new_flags_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _serve_args(
        "main:app",
        "--root-path",
        "/api",
        "--lifespan",
        "on",
        "--proxy-headers",
        "--forwarded-allow-ips",
        "10.0.0.0/8,*",
        "--ws-max-size",
        "1024",
        "--ws-ping-interval",
        "5",
        "--response-timeout",
        "9",
        "--wsgi-threads",
        "4",
    )
    config = serve_config(args)
    assert args.app_spec == "main:app"
    assert config.root_path == "/api" and config.lifespan == "on"
    assert config.proxy_headers and config.forwarded_allow_ips == "10.0.0.0/8,*"
    assert config.ws_max_size == 1024 and config.ws_ping_interval == 5.0
    assert config.timeouts.response == 9.0 and config.wsgi_threads == 4


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = serve_config(_serve_args())
    assert (config.root_path, config.lifespan, config.proxy_headers) == ("", "auto", False)
    assert config.forwarded_allow_ips == "127.0.0.1"
    assert config.ws_max_size == 16 * 1024 * 1024 and config.ws_ping_interval == 20.0
    monkeypatch.setenv("H2BOOKS_FORWARDED_ALLOW_IPS", "192.168.0.0/16")
    monkeypatch.setenv("H2BOOKS_PROXY_HEADERS", "1")
    monkeypatch.setenv("H2BOOKS_LIFESPAN", "off")
    config = serve_config(_serve_args())
    assert config.forwarded_allow_ips == "192.168.0.0/16" and config.proxy_headers
    assert config.lifespan == "off"


def test_http3_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = serve_config(_serve_args())
    assert not config.http3 and not config.quic_retry
    config = serve_config(_serve_args("--http3", "--quic-retry"))
    assert config.http3 and config.quic_retry
    monkeypatch.setenv("H2BOOKS_HTTP3", "1")
    assert serve_config(_serve_args()).http3
    assert not serve_config(_serve_args("--no-http3")).http3


def test_bad_values_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="forwarded-allow-ips"):
        serve_config(_serve_args("--forwarded-allow-ips", "10.0.0.0/99"))
    monkeypatch.setenv("H2BOOKS_LIFESPAN", "sometimes")
    with pytest.raises(UsageError, match="lifespan"):
        serve_config(_serve_args())


def test_lifespan_on_for_the_bookstore_is_a_usage_error(tmp_path: Path) -> None:
    """The bookstore is a native app: `--lifespan on` asks for what it cannot give."""
    args = _serve_args("--lifespan", "on", "--data-dir", str(tmp_path))
    with pytest.raises(UsageError, match="no lifespan"):
        _app_to_serve(args, serve_config(args))


def test_lifespan_on_for_a_wsgi_factory_is_a_usage_error_in_the_parent() -> None:
    """With --factory the app is built in each worker: a kind known up front is refused
    here, once, rather than by every worker (each restarted by the supervisor)."""
    args = _serve_args("os:getcwd", "--factory", "--interface", "wsgi", "--lifespan", "on")
    with pytest.raises(UsageError, match="a wsgi app has no lifespan"):
        _app_to_serve(args, serve_config(args))


def test_push_is_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve_config(_serve_args()).push is False
    assert serve_config(_serve_args("--push")).push is True
    monkeypatch.setenv("H2BOOKS_PUSH", "1")
    assert serve_config(_serve_args()).push is True
    assert serve_config(_serve_args("--no-push")).push is False


def test_early_hints_are_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve_config(_serve_args()).early_hints is True
    assert serve_config(_serve_args("--no-early-hints")).early_hints is False
    monkeypatch.setenv("H2BOOKS_EARLY_HINTS", "0")
    assert serve_config(_serve_args()).early_hints is False
    assert serve_config(_serve_args("--early-hints")).early_hints is True
