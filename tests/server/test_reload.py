"""`h2books serve --reload`: a watcher process restarts the server when the app changes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from h2books.cli import main
from h2books.server.reload import child_arguments
from tests.test_cli_serve import Served

APP_PY = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"{text}"}})
"""


def test_the_child_runs_the_same_command_without_the_reload_flags() -> None:
    argv = ["serve", "main:app", "--reload", "--reload-dir", "src", "--port", "9000",
            "--reload-dir=lib", "--workers", "1"]  # fmt: skip
    assert child_arguments(argv) == ["serve", "main:app", "--port", "9000", "--workers", "1"]


def test_reload_serves_with_one_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--reload", "--workers", "2", "--data-dir", str(tmp_path)]) == 1
    assert "--reload serves with one process" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answer(served: Served, expected: str, deadline: float) -> str:
    answer = ""
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["curl", "-sS", "--http2", "--cacert", served.ca,
             f"https://localhost:{served.port}/"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        answer = done.stdout
        if answer == expected:
            return answer
        time.sleep(0.2)  # the old server is stopping, the new one starting
    return answer


def _serve_with_reload(tmp_path: Path, app_source: str) -> tuple[Served, int]:
    """`h2books serve main:app --reload` of `app_source` in `tmp_path`, once it is up."""
    (tmp_path / "main.py").write_text(app_source)
    port = _free_port()
    argv = [sys.executable, "-m", "h2books", "serve", "main:app", "--reload",
            "--port", str(port), "--data-dir", str(tmp_path / "data"), "--no-access-log"]  # fmt: skip
    served = Served(argv, tmp_path)
    if not served.ready.wait(60):
        served.interrupt()
        raise AssertionError("".join(served.lines))
    return served, port


@pytest.mark.slow
def test_a_changed_app_is_served_after_the_restart(tmp_path: Path) -> None:
    served, port = _serve_with_reload(tmp_path, APP_PY.format(text="one"))
    try:
        assert _answer(served, "one", time.monotonic() + 20) == "one", "".join(served.lines)
        (tmp_path / "main.py").write_text(APP_PY.format(text="two"))
        assert _answer(served, "two", time.monotonic() + 30) == "two", "".join(served.lines)
        assert any("changed: main.py" in line for line in served.lines)
        # A change outside the Python files (the data directory) restarts nothing.
        restarts = sum("restarting the server" in line for line in served.lines)
        (tmp_path / "notes.txt").write_text("not Python")
        time.sleep(1.0)  # watchfiles' debounce is well under this; a restart would show
        assert sum("restarting the server" in line for line in served.lines) == restarts
    finally:
        code = served.interrupt()
    assert code == 0, "".join(served.lines)
    # The watcher stopped its server: nothing listens on the port any more.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_the_server_dies_with_a_killed_watcher(tmp_path: Path) -> None:
    # The app notes the serving process's pid, so that a failure here leaves no orphan.
    pid_file = tmp_path / "server.pid"
    note_pid = f"import os; open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
    served, port = _serve_with_reload(tmp_path, note_pid + APP_PY.format(text="one"))
    try:
        assert _answer(served, "one", time.monotonic() + 20) == "one", "".join(served.lines)
        served.proc.kill()  # the watcher cannot stop its server: the kernel must
        served.proc.wait(10)
        deadline = time.monotonic() + 20
        listening = True
        while listening and time.monotonic() < deadline:
            with socket.socket() as sock:
                listening = sock.connect_ex(("127.0.0.1", port)) == 0
            if listening:
                time.sleep(0.1)  # the server finishes its graceful stop
        assert not listening, "the server outlived its watcher:\n" + "".join(served.lines)
    finally:
        if served.proc.poll() is None:
            served.interrupt()
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # if it outlived the watcher
