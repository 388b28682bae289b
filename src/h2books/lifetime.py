"""A child process that must not outlive its parent (the reload watcher's server, the
emulator's forwarder)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel for SIGTERM when the parent dies (Linux; elsewhere nothing is done).
    False if `parent_pid` is gone already: it died before the request took effect, and
    the caller should exit. Called in the child itself, not in a ``preexec_fn``, which is
    unsafe once the parent runs threads."""
    if not sys.platform.startswith("linux"):
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent_pid
