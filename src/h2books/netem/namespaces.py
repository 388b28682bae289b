"""Named network namespaces that this process made, and only those.

Every namespace is named ``h2b-<pid>-<n>``: the pid is the process that made it,
and it alone deletes it (`Namespace.delete` refuses a name this process did not
create). A namespace whose maker died without cleaning up (SIGKILL, a power cut
of the process) is left in ``/run/netns``; `sweep_stale` deletes those, and only
those it can prove were ours and whose maker is dead.

The name alone proves nothing: ``/run/netns`` may be shared by containers with pid
namespaces of their own, where pid 123 is another process, alive. So each namespace
carries its owner's mark, the alias of its loopback device (it lives and dies with
the namespace, nothing to clean up beside it): the boot id, the pid namespace, the pid
and the pid's start time. A namespace is swept only if its mark is there, names the
boot and the pid namespace we run in, and no process with that pid and start time
exists (pids are reused; the start time tells a new process from the dead maker). No
mark, a mark from elsewhere, anything unreadable: left alone.

A thread enters a namespace with `Namespace.entered()`: sockets it creates and
processes it starts while inside belong to that namespace; the other threads of
the process stay where they are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "NETNS_DIR",
    "PREFIX",
    "Namespace",
    "NamespaceError",
    "enter_path",
    "owner_mark",
    "run_ip",
    "sweep_stale",
    "unavailable_reason",
]

PREFIX = "h2b-"
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_OWNED_NAME = re.compile(r"^h2b-(\d+)-\d+$")
_MARK_PREFIX = "h2books owner "
_counter = itertools.count()
_created: set[str] = set()  # by this process, not yet deleted

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(RuntimeError):
    """A namespace or device operation failed; the message says which and why."""


def run_ip(*args: str) -> None:
    """Run ``ip ARGS``; a failure becomes a `NamespaceError` with ip's own message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = done.stderr.strip() or f"exit status {done.returncode}"
        raise NamespaceError(f"ip {' '.join(args)}: {message}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"setns: {os.strerror(err)}")


def unavailable_reason() -> str | None:
    """Why namespaces + TUN cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "not running as root"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if shutil.which("ip") is None:
        return "no 'ip' command (apt-get install iproute2)"
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "no network namespaces in this kernel"
    return None


class Namespace:
    """A network namespace created by this process (``h2b-<pid>-<n>``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def create(cls) -> Namespace:
        pid = os.getpid()
        name = f"{PREFIX}{pid}-{next(_counter)}"
        if (NETNS_DIR / name).exists():
            raise NamespaceError(f"namespace {name} exists already; not touching it")
        run_ip("netns", "add", name)
        _created.add(name)
        namespace = cls(name)
        try:  # until the mark is set, a sweep leaves the namespace alone: no race
            run_ip("-n", name, "link", "set", "lo", "alias", owner_mark(pid))
        except NamespaceError:
            namespace.delete()
            raise
        return namespace

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread inside this namespace for the block, back where it was after."""
        if self.name not in _created:
            raise NamespaceError(f"namespace {self.name} was not created by this process")
        with enter_path(self.path):
            yield

    def delete(self) -> None:
        """Delete the namespace; refused for any name this process did not create."""
        if self.name not in _created:
            raise NamespaceError(f"refusing to delete {self.name}: not created by this process")
        _created.discard(self.name)
        if self.path.exists():
            run_ip("netns", "delete", self.name)

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"


@contextlib.contextmanager
def enter_path(path: Path) -> Iterator[None]:
    """The calling thread inside the namespace at `path` for the block, back after."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def _start_time(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in (...) may hold spaces


def _identity() -> dict[str, str]:
    """What tells this machine's boot and this pid namespace from any other."""
    return {
        "boot": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "pidns": os.readlink("/proc/self/ns/pid"),
    }


def owner_mark(pid: int) -> str:
    """The mark a namespace made by process `pid` carries (its loopback's alias)."""
    fields = {**_identity(), "pid": str(pid), "start": _start_time(pid) or "?"}
    return _MARK_PREFIX + " ".join(f"{key}={value}" for key, value in fields.items())


def _read_mark(name: str) -> dict[str, str] | None:
    done = subprocess.run(
        ["ip", "-n", name, "-j", "link", "show", "lo"], capture_output=True, text=True, check=False
    )
    try:
        alias = json.loads(done.stdout)[0].get("ifalias", "")
    except (ValueError, IndexError, AttributeError):
        return None
    if done.returncode != 0 or not alias.startswith(_MARK_PREFIX):
        return None
    fields = dict(item.partition("=")[::2] for item in alias[len(_MARK_PREFIX) :].split())
    return fields


def _provably_stale(name: str, pid: int) -> bool:
    """Ours (by the mark) and its maker dead; False whenever that cannot be shown."""
    mark = _read_mark(name)
    if mark is None or mark.get("pid") != str(pid):
        return False
    identity = _identity()
    if mark.get("boot") != identity["boot"] or mark.get("pidns") != identity["pidns"]:
        return False  # another boot or another pid namespace: its pids are not ours to judge
    return _start_time(pid) != mark.get("start")  # gone, or the pid now another process


def sweep_stale() -> list[str]:
    """Delete the ``h2b-<pid>-<n>`` namespaces proven ours whose maker is dead; their names."""
    swept: list[str] = []
    try:
        names = sorted(entry.name for entry in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return swept
    for name in names:
        match = _OWNED_NAME.match(name)
        if match is None or not _provably_stale(name, int(match.group(1))):
            continue
        with contextlib.suppress(NamespaceError):
            run_ip("netns", "delete", name)
            swept.append(name)
    return swept
