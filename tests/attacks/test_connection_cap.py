"""The connection cap (`--max-connections N`) is a bound: busy connections past it are refused.

A connection counts from the moment the server accepts it, its TLS handshake included.
At the cap the server first closes its idlest idle connections (see
test_idle_connections.py); when none is idle, a new connection is reset at once,
before any TLS. Here N + 50 connections that are all busy (half of them stuck in
their TLS handshake, half holding a half-sent HTTP/1.1 request head) find at most N of
them held by the server, at every moment; once they go, the server serves again.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.attacks.support import (
    H2Peer,
    get,
    held_connections,
    quiet,
    read_by_the_server,
    tls_socket,
    wait_for,
)
from tests.conftest import ServerProcess

CAP = 20
EXTRA = 50
# Long enough that no timeout frees a slot while the test runs: only the cap may refuse.
TIMEOUTS = ("--request-head-timeout", "60", "--tls-handshake-timeout", "60")
HALF_HEAD = b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: zzz"
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01"  # a TLS record header, and no more
# CAP held connections, at most ~400 KiB each (asyncio's TLS transport allocates a 256 KiB
# buffer per connection); a refused one costs nothing past its accept().
RSS_BOUND_KIB = 16 * 1024


def _server_pids(server: ServerProcess, workers: int) -> list[int]:
    """The processes that accept: the server itself, or its workers once all are forked."""
    assert server.proc is not None
    pid = server.proc.pid
    if workers == 1:
        return [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    assert wait_for(lambda: len(children.read_text().split()) == workers)
    return [int(child) for child in children.read_text().split()]


class Sampler:
    """Counts the connections each server process holds, every 10 ms, in a thread.

    A refused connection exists in the server for the microseconds between accept() and
    its reset, which a sample may catch. A connection admitted past the cap, on the
    contrary, stays until the test ends (every one of them is busy), so only counts seen
    in two samples in a row are kept."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak: dict[int, int] = dict.fromkeys(pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        previous = dict.fromkeys(self.pids, 0)
        while not self._stop.wait(0.01):
            for pid in self.pids:
                now = held_connections(pid)
                self.peak[pid] = max(self.peak[pid], min(now, previous[pid]))
                previous[pid] = now

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class BusyConnection:
    """A connection the server cannot call idle: its TLS handshake or its request head
    is half sent. `refused` once the server reset it."""

    def __init__(self, port: int, stuck_in_handshake: bool) -> None:
        self.sock: socket.socket | None = None
        try:
            if stuck_in_handshake:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                self.sock.sendall(PARTIAL_CLIENT_HELLO)
            else:
                self.sock = tls_socket(port, "http/1.1")
                self.sock.sendall(HALF_HEAD)
        except OSError:  # reset in the handshake (ssl.SSLError is an OSError too)
            self.close()

    def is_open(self) -> bool:
        """Still open: the server neither reset nor closed it (it sends nothing on these)."""
        if self.sock is None:
            return False
        self.sock.setblocking(False)
        try:
            return bool(self.sock.recv(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def _served(server: ServerProcess) -> bool:
    peer = H2Peer(server.port)
    try:
        peer.send(get(1))
        peer.read_until(lambda f: f.stream_id == 1 and f.flags & 0x1 != 0)
        return peer.reaction.statuses == {"200": 1}
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("workers", "env"),
    [(1, {}), (1, {"H2BOOKS_LOOP": "asyncio"}), (2, {})],
    ids=["uvloop", "asyncio", "2-workers"],
)
def test_busy_connections_beyond_the_cap_are_refused(
    start_server: Callable[..., ServerProcess], workers: int, env: dict[str, str]
) -> None:
    """With workers the cap is per worker (SO_REUSEPORT spreads connections unevenly)."""
    server = start_server(
        "--max-connections", str(CAP), "--workers", str(workers), *TIMEOUTS, env=env
    )
    pids = _server_pids(server, workers)
    # The readiness check's own connection is gone before the attack starts.
    assert wait_for(lambda: quiet(pids[0], server.port))
    rss_before = server.rss_kib() if len(pids) == 1 else 0
    busy: list[BusyConnection] = []
    try:
        with Sampler(pids) as sampler:
            for i in range(CAP * len(pids) + EXTRA):
                connection = BusyConnection(server.port, stuck_in_handshake=i % 2 == 0)
                busy.append(connection)
                # An HTTP/1.1 connection is idle, and may be evicted to make room, until
                # the server has read the first bytes of a request. Busy means busy.
                if connection.sock is not None:
                    assert wait_for(
                        lambda c=connection.sock: read_by_the_server(pids[0], server.port, c)
                    )
            # The refusals are resets sent at accept(): wait until the server has
            # accepted all of them (its backlog is empty when these add up).
            assert wait_for(lambda: sum(not c.is_open() for c in busy) >= EXTRA), [
                c.is_open() for c in busy
            ]
            newcomer = BusyConnection(server.port, stuck_in_handshake=False)
            assert not newcomer.is_open(), "an honest newcomer got past a full cap"
            time.sleep(0.2)  # samples of the steady state, for the sampler's pairs
        held = [c.is_open() for c in busy]
        for pid, peak in sampler.peak.items():
            assert peak <= CAP, f"worker {pid} held {peak} connections at once (cap {CAP})"
        if len(pids) == 1:
            # One process: exactly the first CAP were admitted, in the order they came.
            assert held == [True] * CAP + [False] * EXTRA, held
            assert server.rss_kib() - rss_before < RSS_BOUND_KIB
        else:
            assert sum(held) <= CAP * len(pids), held
    finally:
        for connection in busy:
            connection.close()
    # Once they go, their slots are free again and the server serves.
    assert wait_for(lambda: sum(held_connections(pid) for pid in pids) == 0)
    assert _served(server)


def test_silent_cleartext_connections_count_too(
    start_server: Callable[..., ServerProcess],
) -> None:
    """Before its first bytes a cleartext connection is neither h1 nor h2c yet, and holds a
    socket all the same: it counts, and one cap covers both listeners."""
    server = start_server("--max-connections", str(CAP), *TIMEOUTS)
    assert server.proc is not None
    pid = server.proc.pid
    assert wait_for(lambda: quiet(pid, server.port, server.http_port))
    silent = [socket.create_connection(("127.0.0.1", server.http_port)) for _ in range(CAP // 2)]
    stuck = [BusyConnection(server.port, stuck_in_handshake=True) for _ in range(CAP - len(silent))]
    try:
        assert wait_for(lambda: held_connections(pid) == CAP), held_connections(pid)
        for port in (server.port, server.http_port):
            newcomer = socket.create_connection(("127.0.0.1", port))
            newcomer.settimeout(10)
            try:
                with pytest.raises(ConnectionResetError):
                    newcomer.recv(1)
            finally:
                newcomer.close()
        assert held_connections(pid) == CAP
    finally:
        for sock in silent:
            sock.close()
        for connection in stuck:
            connection.close()
    assert wait_for(lambda: held_connections(pid) == 0)
    assert _served(server)
