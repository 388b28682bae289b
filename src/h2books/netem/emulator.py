"""The emulated link, from the caller's side: bring it up, put a thread in it, take it down.

::

    with EmulatedLink(Conditions(rtt=0.05)) as link, link.client_side():
        ...  # sockets made and processes started by this thread go through the link

`EmulatedLink` sweeps the namespaces that dead owners left behind, creates its own
(`Namespace.create`), starts the forwarder (`forwarder.py`, a process of its own in a
session of its own, killed by the kernel if this process dies) and waits for it to be
ready. On the way out, whatever the way out (an exception, Ctrl+C, or SIGTERM, which
it turns into `SystemExit` while the link is up), it stops the forwarder, which takes
its two TUN devices and its route with it, and deletes the namespace. A SIGKILL leaves
the namespace behind, and the next `EmulatedLink` (or `sweep_stale`) removes it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from types import FrameType, TracebackType
from typing import Any

from h2books.netem.conditions import Conditions
from h2books.netem.namespaces import Namespace, NamespaceError, sweep_stale, unavailable_reason

__all__ = ["DEFAULT_MTU", "EmulatedLink", "NamespaceError"]

DEFAULT_MTU = 1500  # Ethernet's: the packet rate a real path has, not a flattering one
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_instances = itertools.count()


class EmulatedLink:
    """Client namespace + forwarder between it and the root namespace; see the module doc."""

    def __init__(
        self, conditions: Conditions, *, seed: int | None = None, mtu: int = DEFAULT_MTU
    ) -> None:
        self.conditions = conditions
        self.seed = seed
        self.mtu = mtu
        self.namespace: Namespace | None = None
        self.client_address = ""
        self.stats: dict[str, Any] = {}  # the forwarder's counters, once it has stopped
        self._process: subprocess.Popen[str] | None = None
        self._previous_sigterm: Any = None

    def __enter__(self) -> EmulatedLink:
        reason = unavailable_reason()
        if reason is not None:
            raise NamespaceError(f"cannot emulate the link: {reason}")
        self._catch_sigterm()
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self) -> None:
        sweep_stale()
        self.namespace = Namespace.create()
        instance = next(_instances)
        pid = os.getpid()
        config = {
            "namespace": self.namespace.name,
            "client_dev": f"h2b{pid}c{instance}",
            "server_dev": f"h2b{pid}s{instance}",
            "owner_pid": pid,
            "instance": instance,
            "mtu": self.mtu,
            "seed": self.seed,
            "conditions": self.conditions.as_dict(),
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "h2books.netem.forwarder", json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl+C reaches us; we stop it, in order
        )
        line = _read_line(self._process, _READY_TIMEOUT)
        try:
            ready = json.loads(line) if line else {}
        except ValueError:
            ready = {}
        if not ready.get("ready"):
            error = ready.get("error") or f"the forwarder did not start ({line.strip()!r})"
            raise NamespaceError(error)
        self.client_address = ready["client_address"]

    def close(self) -> None:
        """Stop the forwarder and delete the namespace; safe to call twice."""
        try:
            process, self._process = self._process, None
            if process is not None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                try:
                    out, _ = process.communicate(timeout=_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    out, _ = process.communicate()
                for line in out.splitlines():
                    with contextlib.suppress(ValueError):
                        data = json.loads(line)
                        if isinstance(data, dict) and "up" in data:
                            self.stats = data
            namespace, self.namespace = self.namespace, None
            if namespace is not None:
                namespace.delete()
        finally:
            self._restore_sigterm()

    @contextlib.contextmanager
    def client_side(self) -> Iterator[None]:
        """The calling thread in the client namespace for the block."""
        if self.namespace is None:
            raise NamespaceError("the link is not up")
        with self.namespace.entered():
            yield

    def describe(self) -> str:
        return f"{self.conditions.describe()} (emulated link: namespaces + TUN)"

    def _catch_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def _restore_sigterm(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line of the process's output, or '' after `timeout` or at its exit."""
    assert process.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return box[0] if box else ""
