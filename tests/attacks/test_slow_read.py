"""Slow readers (CVE-2019-9511 data dribble, CVE-2019-9517 internal data buffering):
clients that ask for big responses and then shut their flow-control window.

Response bodies are never copied into per-connection buffers (queued data is a view
of the handler's bytes), and a connection with work pending that makes no progress
for `--stall-timeout` seconds gets GOAWAY and is closed. An honest slow download that
keeps reading is not cut off, however long it takes.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable

from tests.attacks.support import H2Peer, Reaction, cpu_seconds, get, measure, window_update
from tests.conftest import ServerProcess
from tests.server.h2wire import DATA, END_STREAM, HEADERS, NO_ERROR, PING, frame

STALL = 2.0  # --stall-timeout for these tests
SWEEP = 1.0  # the server checks timeouts once a second
CONNECTIONS = 10
STREAMS = 100  # per connection, each asking for /books.json (~300 KB)
# 1,000 blocked responses of 300 KB: 300 MB if bodies were copied; they are not.
RSS_BOUND_KIB = 24 * 1024
PING_INTERVAL = 0.25  # keep-alive PINGs, per connection: chatter, far below the control budget
# One connection's 100 blocked responses (30 MB if copied).
BLOCKED_RSS_BOUND_KIB = 8 * 1024


def _zero_window_round(keep_alive_pings: bool) -> Callable[[int], Reaction]:
    def slow_read_round(port: int) -> Reaction:
        peers = [H2Peer(port, initial_window_size=0) for _ in range(CONNECTIONS)]
        try:
            started = time.monotonic()
            for peer in peers:
                peer.send(b"".join(get(sid, "/books.json") for sid in range(1, 2 * STREAMS, 2)))
            deadline = started + STALL + SWEEP + 4
            next_ping = started
            while time.monotonic() < deadline and not all(p.closed for p in peers):
                if keep_alive_pings and time.monotonic() >= next_ping:
                    next_ping += PING_INTERVAL
                    for peer in peers:
                        if not peer.closed:
                            peer.send(frame(PING, 0, 0, b"alive!!!"))
                for peer in peers:
                    try:
                        while not peer.closed and peer.has_input():
                            peer.read_frame(0.5)
                    except TimeoutError:
                        pass
                # Until the server says something (its GOAWAY, the close) or the next
                # keep-alive PING is due.
                wait = max(0.0, next_ping - time.monotonic()) if keep_alive_pings else 0.25
                select.select([p.sock for p in peers if not p.closed], [], [], wait)
            merged = Reaction()
            for peer in peers:
                r = peer.reaction
                merged.goaways += r.goaways
                merged.data_bytes += r.data_bytes
                merged.closed = all(p.closed for p in peers)
                merged.closed_at = max(merged.closed_at, r.closed_at)
                merged.statuses.update(r.statuses)
            merged.note = f"{merged.closed_at - started:.2f}" if merged.closed else "open"
            return merged
        finally:
            for peer in peers:
                peer.close()

    return slow_read_round


def _check(result_reactions: list[Reaction]) -> None:
    for reaction in result_reactions:
        assert reaction.closed, f"still open {STALL + SWEEP + 4} s later: {reaction}"
        elapsed = float(reaction.note)
        assert STALL - 0.5 <= elapsed <= STALL + SWEEP + 1.5, elapsed
        assert reaction.goaway_codes == [NO_ERROR] * CONNECTIONS, reaction
        assert reaction.data_bytes == 0  # the window never opened: nothing was sent
        assert reaction.statuses == {"200": CONNECTIONS * STREAMS}, reaction


def test_zero_window_readers_are_closed_after_the_stall_timeout(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--stall-timeout", str(STALL))
    result = measure(server, _zero_window_round(keep_alive_pings=False), max_rounds=3)
    print(result)
    _check(result.reactions)
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result


def test_zero_window_readers_kept_alive_by_pings_are_closed_too(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--stall-timeout", str(STALL))
    result = measure(server, _zero_window_round(keep_alive_pings=True), max_rounds=3)
    print(result)
    _check(result.reactions)
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result


def test_honest_slow_download_is_not_cut_off(start_server: Callable[..., ServerProcess]) -> None:
    """16 KiB of window every 0.3 s: /books.json takes ~5.5 s, well past the stall timeout,
    but every step makes progress."""
    server = start_server("--stall-timeout", str(STALL))
    window = 16384
    peer = H2Peer(server.port, initial_window_size=window)
    try:
        started = time.monotonic()
        peer.send(get(1, "/books.json"))
        received = 0
        done = False
        while not done:
            f = peer.read_frame(STALL + SWEEP + 2)
            assert f is not None, f"cut off after {received} bytes: {peer.reaction}"
            if f.type == DATA and f.stream_id == 1:
                received += len(f.payload)
                done = bool(f.flags & END_STREAM)
                if not done and received % window == 0:
                    time.sleep(0.3)
                    peer.send(window_update(1, window) + window_update(0, window))
        elapsed = time.monotonic() - started
        assert received > 250_000 and elapsed > STALL + SWEEP, (received, elapsed)
        assert not peer.reaction.goaways
    finally:
        peer.close()


def test_blocked_streams_cost_no_cpu(server: ServerProcess) -> None:
    """Nothing to send and no window to send it in: the server must sleep, not spin
    (Twisted spins at 100% CPU on a single flow-control-blocked stream)."""
    warm = H2Peer(server.port)  # /books.json built and cached before the baseline
    warm.send(get(1, "/books.json") + window_update(0, 1 << 20) + window_update(1, 1 << 20))
    warm.read_until(lambda f: f.stream_id == 1 and f.flags & END_STREAM != 0)
    warm.close()
    rss_before = server.rss_kib()
    peer = H2Peer(server.port, initial_window_size=0)
    try:
        peer.send(b"".join(get(sid, "/books.json") for sid in range(1, 2 * STREAMS, 2)))
        for _ in range(STREAMS):
            peer.read_until(lambda f: f.type == HEADERS)
        assert server.proc is not None
        before = cpu_seconds(server.proc.pid)
        time.sleep(2.0)  # the window in which CPU use is measured
        used = cpu_seconds(server.proc.pid) - before
        assert used < 0.1, f"{used:.2f} s of CPU in 2 s with every stream blocked"
        assert peer.reaction.data_bytes == 0 and not peer.closed
        # 100 blocked responses of ~300 KB: 30 MB if bodies were copied; they are not.
        growth = server.rss_kib() - rss_before
        assert growth < BLOCKED_RSS_BOUND_KIB, f"RSS grew by {growth} KiB"
    finally:
        peer.close()
