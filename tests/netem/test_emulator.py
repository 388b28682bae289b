"""The emulated link for real: namespaces, TUN devices, the forwarder; set up, used, torn down."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from h2books.netem.conditions import Conditions
from h2books.netem.emulator import EmulatedLink
from h2books.netem.namespaces import (
    Namespace,
    NamespaceError,
    owner_mark,
    run_ip,
    sweep_stale,
)
from h2books.netem.tun import TunError, open_tun
from tests.netem.conftest import ours, require_namespaces

pytestmark = pytest.mark.usefixtures("namespaces_available")


@pytest.fixture
def namespaces_available() -> None:
    require_namespaces()


def _echo_server() -> tuple[socket.socket, int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                while data := connection.recv(65536):
                    connection.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_a_round_trip_takes_the_rtt_and_nothing_is_left_behind() -> None:
    before = ours()
    _, port = _echo_server()
    with EmulatedLink(Conditions(rtt=0.040)) as link:
        assert link.namespace is not None
        assert (Path("/run/netns") / link.namespace.name).exists()
        with link.client_side():
            started = time.perf_counter()
            client = socket.create_connection(("127.0.0.1", port), timeout=5)  # one RTT
            connected = time.perf_counter()
            client.sendall(b"ping")
            assert client.recv(4) == b"ping"  # one more
            done = time.perf_counter()
            client.close()
    assert connected - started >= 0.040
    assert done - connected >= 0.040
    assert ours() == before
    assert link.stats["up"]["packets_in"] >= 3


def test_the_client_namespace_is_only_the_calling_threads() -> None:
    home = os.readlink("/proc/thread-self/ns/net")
    go, seen = threading.Event(), []

    def look() -> None:  # a thread that was running before the link came up
        go.wait(5)
        seen.append(os.readlink("/proc/thread-self/ns/net"))

    other = threading.Thread(target=look)
    other.start()
    with EmulatedLink(Conditions(rtt=0.020)) as link, link.client_side():
        inside = os.readlink("/proc/thread-self/ns/net")
        go.set()
        other.join()
    assert inside != home
    assert seen == [home]
    assert os.readlink("/proc/thread-self/ns/net") == home


def test_a_namespace_not_ours_is_never_deleted_nor_entered() -> None:
    stranger = f"h2b-{os.getpid()}-stranger"  # looks like ours, was not made by Namespace.create
    run_ip("netns", "add", stranger)
    try:
        with pytest.raises(NamespaceError, match="not created by this process"):
            Namespace(stranger).delete()
        with pytest.raises(NamespaceError), Namespace(stranger).entered():
            pass
        assert stranger not in sweep_stale()  # its "owner" (us) is alive
        assert (Path("/run/netns") / stranger).exists()
    finally:
        run_ip("netns", "delete", stranger)


def test_a_device_name_in_use_is_refused_not_taken_over() -> None:
    fd = open_tun(f"h2b{os.getpid()}x")
    try:
        with pytest.raises(TunError, match="exists already"):
            open_tun(f"h2b{os.getpid()}x")
    finally:
        os.close(fd)
    assert f"h2b{os.getpid()}x" not in ours()[1]


def _dead_pid() -> int:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


def test_the_sweep_removes_namespaces_whose_owner_died() -> None:
    maker = subprocess.run(  # makes a namespace and dies without deleting it
        [sys.executable, "-c", "from h2books.netem.namespaces import Namespace\n"
         "print(Namespace.create().name)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    stale = maker.stdout.strip()
    assert (Path("/run/netns") / stale).exists()
    try:
        assert stale in sweep_stale()
    finally:
        if (Path("/run/netns") / stale).exists():
            run_ip("netns", "delete", stale)
    assert not (Path("/run/netns") / stale).exists()


@pytest.mark.parametrize(
    "mark",
    [
        None,  # no mark: made by someone else, or its maker is between add and mark
        "h2books owner boot={boot} pidns=pid:[1] pid={pid} start=1",  # another pid namespace
        "h2books owner boot=another-boot pidns={pidns} pid={pid} start=1",
        "h2books owner boot={boot} pidns={pidns} pid=1 start=1",  # names another pid
    ],
)
def test_the_sweep_leaves_a_namespace_it_cannot_prove_ours(mark: str | None) -> None:
    pid = _dead_pid()  # in our pid namespace, nobody has it: only the mark can save it
    name = f"h2b-{pid}-0"
    run_ip("netns", "add", name)
    try:
        if mark is not None:
            ours_now = dict(item.split("=", 1) for item in owner_mark(pid).split()[2:])
            text = mark.format(boot=ours_now["boot"], pidns=ours_now["pidns"], pid=pid)
            run_ip("-n", name, "link", "set", "lo", "alias", text)
        assert name not in sweep_stale()
        assert (Path("/run/netns") / name).exists()
    finally:
        run_ip("netns", "delete", name)


_HOLDER = textwrap.dedent(
    """
    import signal, sys, time
    # As in a terminal, Ctrl+C interrupts: a test run started in the background of a
    # non-interactive shell (`.ci/run &`) hands its children SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from h2books.netem.conditions import Conditions
    from h2books.netem.emulator import EmulatedLink
    with EmulatedLink(Conditions(rtt=0.010)) as link:
        print(link.namespace.name, flush=True)
        time.sleep(60)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_holding_the_link_cleans_everything(signum: int) -> None:
    before = ours()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    name = holder.stdout.readline().strip()
    assert name.startswith(f"h2b-{holder.pid}-")
    assert (Path("/run/netns") / name).exists()
    assert ours() != before
    holder.send_signal(signum)
    holder.wait(timeout=30)  # a bound on a hang, not a speed
    assert not (Path("/run/netns") / name).exists()
    assert ours() == before


def test_after_a_sigkill_the_devices_go_and_the_next_link_sweeps_the_namespace() -> None:
    before = ours()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    name = holder.stdout.readline().strip()
    holder.kill()
    holder.wait(timeout=30)
    deadline = time.monotonic() + 5
    while ours()[1] != before[1] and time.monotonic() < deadline:  # the forwarder's death signal
        time.sleep(0.05)
    assert ours()[1] == before[1]  # the forwarder died with its parent, and its devices with it
    assert (Path("/run/netns") / name).exists()  # SIGKILL left the namespace...
    with EmulatedLink(Conditions(rtt=0.010)):
        assert not (Path("/run/netns") / name).exists()  # ...which the next link swept
    assert ours() == before


def test_a_forwarder_that_cannot_start_leaves_nothing() -> None:
    before = ours()
    with pytest.raises(NamespaceError), EmulatedLink(Conditions(rtt=0.010), mtu=10):
        pass  # an MTU under IPv4's minimum is refused by ip
    assert ours() == before


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_the_forwarder_does_not_inherit_its_owners_cpu_pinning() -> None:
    # A benchmark pins its client (this thread) to one core; the forwarder it starts must
    # not share that core with it.
    allowed = os.sched_getaffinity(0)
    result: dict[str, set[int]] = {}

    def pinned_owner() -> None:
        os.sched_setaffinity(0, {min(allowed)})  # this thread only
        with EmulatedLink(Conditions(rtt=0.002)) as link:
            assert link._process is not None
            result["forwarder"] = os.sched_getaffinity(link._process.pid)

    owner = threading.Thread(target=pinned_owner)
    owner.start()
    owner.join(30)
    # Every CPU this test may use (and any others the machine allows), not just the one.
    assert allowed <= result["forwarder"]
