"""Shared fixtures: the real server in a subprocess, the post's data, and required tools."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_BOOKS = REPO_ROOT.parent / "shared" / "data" / "books.json"
IN_CI = bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """The path of an external peer (curl, h2load). Missing is a skip locally, a failure in CI."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install {'nghttp2-client' if name == 'h2load' else name})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_books() -> Path:
    if not SHARED_BOOKS.is_file():
        pytest.skip(f"the post's books.json is not at {SHARED_BOOKS}")
    return SHARED_BOOKS


class ServerProcess:
    """`python -m h2books serve` on free ports, with its stderr/stdout collected."""

    _PORT_LINE = re.compile(r"https://[^:]+:(\d+)/")
    _HTTP_LINE = re.compile(r"http://[^:]+:(\d+)/")
    _CA_LINE = re.compile(r"--cacert (\S+)")

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = [
            sys.executable,
            "-m",
            "h2books",
            "serve",
            "--port",
            "0",
            "--http-port",
            "0",
            "--data-dir",
            str(data_dir),
            *extra,
        ]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.http_port = 0
        self.ca = Path()
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=REPO_ROOT,
        )
        ready = threading.Event()

        def read_stderr() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
                if match := self._PORT_LINE.search(line):
                    self.port = int(match.group(1))
                if match := self._HTTP_LINE.search(line):
                    self.http_port = int(match.group(1))
                if match := self._CA_LINE.search(line):
                    self.ca = Path(match.group(1))
                if "stop: Ctrl+C" in line:
                    ready.set()
            ready.set()

        def read_stdout() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.stdout_lines.append(line)

        threading.Thread(target=read_stderr, daemon=True).start()
        threading.Thread(target=read_stdout, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None or not self.port:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.stderr_lines))
        self.wait_listening()
        return self

    def wait_listening(self, timeout: float = 30.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server is not accepting connections")

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("h2books-data")


@pytest.fixture(scope="session")
def server(server_data_dir: Path) -> Iterator[ServerProcess]:
    """One shared server for tests that don't change its state."""
    process = ServerProcess(server_data_dir).start()
    yield process
    process.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that stop it or push it over."""
    process = ServerProcess(tmp_path / "data", "--no-access-log")
    yield process
    process.stop()
