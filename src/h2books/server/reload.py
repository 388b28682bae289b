"""`h2books serve --reload`: restart the server when the app's source changes.

The watcher is a parent process that never serves: it runs `h2books serve` (the same
command line without the reload flags) as a child, watches the Python files under the
reload directories with watchfiles (the notify-based watcher Uvicorn also uses), and on a
change stops the child gracefully (SIGTERM: in-flight requests finish) and starts a new
one. Serving therefore costs exactly what it costs without `--reload`: no watcher thread,
no check per request in the serving process.

A child that exits by itself (an import error in the app, a port in use) is not restarted
in a loop: the next change to the source starts it again, so fixing the error is enough.
SIGINT/SIGTERM to the watcher stop the child the same graceful way, then the watcher.
A watcher that cannot stop it (SIGKILL, a crash) must not leave a server holding the port:
on Linux the child asks the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), set
in the child itself (`child_main`) rather than in a ``preexec_fn``, which is unsafe once
watchfiles' threads run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from h2books.lifetime import die_with_parent

log = logging.getLogger("h2books.reload")
_SignalHandler = Callable[[int, FrameType | None], object] | int | None

# How long a child has to finish its in-flight requests before it is killed: a reload is
# a development tool, a stuck request must not hold the next version back for long.
STOP_TIMEOUT_SECONDS = 10.0

# The child's command: `child_main` with the watcher's pid, then `h2books` arguments.
_CHILD_ENTRY = "from h2books.server.reload import child_main; child_main()"

RELOAD_FLAG = "--reload"
RELOAD_DIR_FLAG = "--reload-dir"


def child_arguments(argv: Sequence[str]) -> list[str]:
    """`argv` of `h2books ...` without the reload flags: the command the child runs."""
    kept: list[str] = []
    skip_value = False
    for argument in argv:
        if skip_value:
            skip_value = False
        elif argument == RELOAD_FLAG or argument.startswith(RELOAD_DIR_FLAG + "="):
            pass
        elif argument == RELOAD_DIR_FLAG:
            skip_value = True
        else:
            kept.append(argument)
    return kept


class Reloader:
    """Runs `command` as a child and starts it again whenever a watched file changes."""

    def __init__(self, command: Sequence[str], directories: Sequence[Path]) -> None:
        self.command = list(command)
        self.directories = [directory.resolve() for directory in directories]
        self.stop_event = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        from watchfiles import PythonFilter, watch

        previous = self._install_signal_handlers()
        try:
            self._start()
            shown = ", ".join(str(directory) for directory in self.directories)
            log.warning("reloading on changes to Python files under %s", shown)
            for changes in watch(
                *self.directories,
                watch_filter=PythonFilter(),
                stop_event=self.stop_event,
                raise_interrupt=False,
            ):
                names = sorted({os.path.relpath(path) for _, path in changes})
                log.warning("changed: %s; restarting the server", ", ".join(names))
                self._stop()
                self._start()
            return 0
        finally:
            self._stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self) -> None:
        self.child = subprocess.Popen(self.command)

    def _stop(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the server did not stop within %.0f s: killed", STOP_TIMEOUT_SECONDS)
            child.kill()
            child.wait()

    def _install_signal_handlers(self) -> dict[int, _SignalHandler]:
        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop_event.set()

        previous: dict[int, _SignalHandler] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, stop)
        return previous


def child_main() -> None:
    """The child's entry: ``python -c _CHILD_ENTRY WATCHER_PID ARGS...``, `h2books ARGS`.

    It dies with its watcher (SIGTERM, so in-flight requests still finish); where prctl
    does not exist (not Linux) it runs as it is.
    """
    watcher_pid, arguments = int(sys.argv[1]), sys.argv[2:]
    if not die_with_parent(watcher_pid):
        sys.exit(1)
    from h2books.cli import main

    sys.argv = ["h2books", *arguments]
    sys.exit(main(arguments))


def run_with_reload(argv: Sequence[str], directories: Sequence[Path]) -> int:
    """Serve `h2books` `argv` (reload flags removed) in a child, restarted on changes."""
    child = [sys.executable, "-c", _CHILD_ENTRY, str(os.getpid()), *child_arguments(argv)]
    return Reloader(child, directories or [Path.cwd()]).run()
