"""Child processes: bounded runs, CPU accounting per session, core pinning."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from h2books.bench.processes import Pinning, detect_pinning, run_bounded, session_cpu_seconds

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass"


def test_run_bounded_collects_output_and_cpu() -> None:
    finished = run_bounded(
        [sys.executable, "-c", BUSY.format(seconds=0.3) + "\nprint('done')"], timeout=30
    )
    assert finished.returncode == 0
    assert not finished.timed_out
    assert finished.stdout.strip() == "done"
    assert finished.user + finished.sys >= 0.25
    assert finished.wall >= 0.25


def test_run_bounded_kills_at_the_deadline() -> None:
    start = time.monotonic()
    finished = run_bounded([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5)
    assert finished.timed_out
    assert finished.returncode is None
    assert time.monotonic() - start < 10


def test_run_bounded_reports_a_missing_program() -> None:
    finished = run_bounded(["/nonexistent/program"], timeout=5)
    assert finished.returncode == 127
    assert "cannot start" in finished.stderr


def test_session_cpu_counts_forked_workers() -> None:
    # A leader that forks a busy worker, like Granian or Hypercorn: both count.
    script = f"import os, time\npid = os.fork()\n{BUSY.format(seconds=0.4)}\ntime.sleep(30)\n"
    leader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        cpu = 0.0
        while time.monotonic() < deadline and cpu < 0.75:
            time.sleep(0.2)
            cpu = session_cpu_seconds(leader.pid)
        assert cpu >= 0.75  # two processes, 0.4 s each
        precise = session_cpu_seconds(leader.pid, precise=True)
        assert abs(precise - cpu) < 0.1
    finally:
        os.killpg(leader.pid, 9)
        leader.wait()


def test_session_cpu_of_no_such_session_is_zero() -> None:
    assert session_cpu_seconds(2**22 + 12345) == 0.0


def test_pinning_can_be_turned_off() -> None:
    pinning = detect_pinning(False)
    assert pinning == Pinning(None, None)
    assert pinning.server_prefix == pinning.client_prefix == []
    assert pinning.describe() == "not pinned"


def test_pinning_uses_two_distinct_cores_when_there_are_two() -> None:
    pinning = detect_pinning()
    if len(os.sched_getaffinity(0)) < 2:
        assert pinning.server_core is None
        return
    assert pinning.server_core is not None and pinning.client_core is not None
    assert pinning.server_core != pinning.client_core
    assert pinning.server_prefix == ["taskset", "-c", str(pinning.server_core)]
