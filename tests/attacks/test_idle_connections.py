"""Idle connections: 2,000 TLS connections, handshake done and h2 settled, doing nothing.

Each costs the server at most 30 KB of RSS (issue 6: Uvicorn+zttp 29 KB, Hypercorn on
uvloop 46 KB, on asyncio 230 KB), and the server stays as fast for everyone else. At
the connection cap (`--max-connections`) a new client is not locked out: the idlest
connections are closed (one GOAWAY NO_ERROR, then the close) to make room for it. Busy
connections beyond the cap are refused: see test_connection_cap.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest

from tests.attacks.support import (
    H2Peer,
    Measurement,
    Probe,
    get,
    held_connections,
    probe_median,
    unread_by_the_server,
    wait_for,
)
from tests.conftest import ServerProcess
from tests.server.h2wire import NO_ERROR

IDLE = 2000
BYTES_PER_CONNECTION = 30_000
CAP = 50


def _open(port: int, count: int) -> list[H2Peer]:
    return [H2Peer(port) for _ in range(count)]


def _close(peers: list[H2Peer]) -> None:
    for peer in peers:
        peer.close()


def _settled(server: ServerProcess, count: int) -> bool:
    """The server holds `count` connections or more and has read all they sent (the last
    SETTINGS ACKs included): their memory is all allocated."""
    assert server.proc is not None
    pid = server.proc.pid
    return held_connections(pid) >= count and unread_by_the_server(pid, server.port) == 0


def _latency_with(
    server: ServerProcess, hold: Callable[[], list[H2Peer]], *, reconnect: bool = False
) -> Measurement:
    """Baseline, then latency and RSS while `hold()`'s connections stay open; the
    latency part is measured again once if it fails."""
    result: Measurement | None = None
    for _attempt in range(2):
        probe = Probe(server, reconnect=reconnect)
        held: list[H2Peer] = []
        try:
            for _ in range(5):
                probe.request_ms()
            baseline = probe_median(probe, server, [0])
            before = server.rss_kib()
            held = hold()
            assert wait_for(partial(_settled, server, len(held))), "connections not settled"
            after = server.rss_kib()
            peak = [after]
            during = probe_median(probe, server, peak)
            result = Measurement(baseline, during, before, peak[0], after, [])
        finally:
            probe.close()
            _close(held)
        if result.latency_ok:
            break
    assert result is not None
    return result


@pytest.mark.slow
def test_two_thousand_idle_connections_cost_under_30_kb_each(server: ServerProcess) -> None:
    _close(_open(server.port, 100))  # warm the allocator: the first connections cost more
    result = _latency_with(server, lambda: _open(server.port, IDLE))
    per_connection = (result.rss_after_kib - result.rss_before_kib) * 1024 / IDLE
    print(result, f"{per_connection:.0f} bytes per idle connection")
    assert per_connection <= BYTES_PER_CONNECTION, result
    assert result.latency_ok, result


def test_at_the_cap_the_idlest_connections_make_room(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--max-connections", str(CAP))
    old: list[H2Peer] = []

    def fill() -> list[H2Peer]:
        old.extend(_open(server.port, CAP))
        return old

    # The probe is a new client on a full server (its connection, idle between requests,
    # may itself be the idlest one closed): it must get in, and be fast.
    result = _latency_with(server, fill, reconnect=True)
    print(result)
    assert result.latency_ok, result
    assert result.rss_growth_kib < 8 * 1024, result

    # New clients on a full server: each one gets in and is served.
    old.clear()
    old.extend(_open(server.port, CAP))
    newcomers: list[H2Peer] = []
    try:
        for _ in range(10):
            peer = H2Peer(server.port)  # the handshake completing is getting in
            newcomers.append(peer)
            peer.send(get(1))
            peer.read_until(lambda f: f.stream_id == 1 and f.flags & 0x1 != 0)
            assert peer.reaction.statuses == {"200": 1}, peer.reaction
        # The ten idlest were told to go away (one GOAWAY NO_ERROR: nothing was in flight)
        # and closed, each when a newcomer came in; the others are untouched.
        assert wait_for(lambda: all(peer.drain(0.01).closed for peer in old[:10])), [
            peer.reaction for peer in old[:10]
        ]
        evicted = [i for i, peer in enumerate(old) if peer.drain(0.01).closed]
        assert evicted == list(range(10)), f"not the ten idlest: {evicted}"
        for index in evicted:
            assert old[index].reaction.goaways == [(0, NO_ERROR)], old[index].reaction
    finally:
        _close(old)
        _close(newcomers)
