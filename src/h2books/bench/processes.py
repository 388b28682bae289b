"""Child processes for the benchmark: core pinning, CPU accounting, bounded runs.

Servers run in a session of their own, so that their CPU time is the sum over
every process of that session (Granian and Hypercorn fork workers), read from
``/proc/PID/stat`` (utime + stime, plus the reaped children's cutime + cstime).
Clients run to completion under a deadline; their CPU comes from ``wait4``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Finished",
    "Pinning",
    "detect_pinning",
    "run_bounded",
    "session_cpu_seconds",
]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which core the server and the client run on; None for no pinning."""

    server_core: int | None
    client_core: int | None

    def prefix(self, core: int | None) -> list[str]:
        if core is None:
            return []
        return ["taskset", "-c", str(core)]

    @property
    def server_prefix(self) -> list[str]:
        return self.prefix(self.server_core)

    @property
    def client_prefix(self) -> list[str]:
        return self.prefix(self.client_core)

    def describe(self) -> str:
        if self.server_core is None:
            return "not pinned"
        return f"server on core {self.server_core}, client on core {self.client_core}"


def detect_pinning(enabled: bool = True) -> Pinning:
    """Server on core 0, client on core 1, when taskset exists and both cores are ours."""
    if not enabled or shutil.which("taskset") is None:
        return Pinning(None, None)
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return Pinning(None, None)
    if len(cores) < 2:
        return Pinning(None, None)
    return Pinning(cores[0], cores[1])


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain ") ": cut at the last one.
    end = raw.rfind(b")")
    if end < 0:
        return None
    return raw[end + 2 :].decode("ascii", "replace").split()


def session_cpu_seconds(session_id: int, *, precise: bool = False) -> float:
    """CPU seconds of every live process in a session, plus the children they reaped.

    By default utime + stime from ``/proc/PID/stat``, the method's measure, in clock
    ticks (10 ms). `precise` reads each thread's ``schedstat`` (nanoseconds) instead,
    for runs too short for ticks; it falls back to ticks where schedstat is missing.
    """
    total = 0.0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # After the name: state ppid pgrp session ... utime(11) stime(12) cutime(13) cstime(14).
        if fields is None or len(fields) < 15 or fields[3] != str(session_id):
            continue
        own = (int(fields[11]) + int(fields[12])) / _TICKS
        reaped = (int(fields[13]) + int(fields[14])) / _TICKS
        if precise:
            threads = _threads_runtime(int(entry))
            if threads is not None:
                own = threads
        total += own + reaped
    return total


def _threads_runtime(pid: int) -> float | None:
    """Seconds on CPU of a process's live threads, from their schedstat (nanoseconds)."""
    runtime = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as stat:
                runtime += int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return runtime / 1e9


@dataclass(slots=True)
class Finished:
    """How a bounded child process ended."""

    returncode: int | None  # None: killed at the deadline
    stdout: str
    stderr: str
    wall: float
    user: float
    sys: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_bounded(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Finished:
    """Run a child to its end or kill it at the deadline; its CPU time comes from wait4."""
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
    ):
        start = time.perf_counter()
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            return Finished(127, "", f"cannot start {argv[0]}: {exc}", 0.0, 0.0, 0.0)
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            # The child leads its own session: take down whatever it started too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # Ctrl+C: leave no client running behind us
            timer.cancel()
            kill()
            process.wait()
            raise
        timer.cancel()
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Finished(
            None if killed.is_set() else process.returncode,
            out.read(),
            err.read(),
            wall,
            usage.ru_utime,
            usage.ru_stime,
        )
