"""Rapid Reset (CVE-2023-44487): HEADERS immediately cancelled by RST_STREAM, in bulk.

The server counts client resets in a token bucket per connection (200, refilled at
100/s, like nghttp2 and h2o); past it: GOAWAY ENHANCE_YOUR_CALM and close. A request
reset in the same read that brought it never reaches the handler. The attacker
reconnects after every GOAWAY, as real ones do.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.attacks.support import H2Peer, Reaction, get, measure, rst
from tests.conftest import ServerProcess
from tests.server.h2wire import CANCEL, ENHANCE_YOUR_CALM

PAIRS = 1000  # per connection: five times the budget
RESET_BUDGET = 200
ATTACK_PATH = "/book?id=1"  # the probe asks for /hello: access-log lines tell them apart
# The flood costs each connection a bounded amount of state (a few KiB, gone with the
# connection); the peak over the whole attack stays far below this.
RSS_BOUND_KIB = 16 * 1024


def flood_round(port: int) -> Reaction:
    peer = H2Peer(port)
    try:
        # Bursts of 50 pairs, a millisecond apart: each burst is read (and its requests
        # parsed) on its own, so most bursts end without any connection error.
        for first in range(1, 2 * PAIRS, 100):
            sids = range(first, first + 100, 2)
            burst = b"".join(get(sid, ATTACK_PATH) + rst(sid, CANCEL) for sid in sids)
            if not peer.send(burst):
                break
            time.sleep(0.001)
        return peer.drain(5)
    finally:
        peer.close()


def test_rapid_reset_is_cut_off_with_enhance_your_calm(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(access_log=True)
    result = measure(server, flood_round)
    print(result)
    rounds = [r for r in result.reactions if not r.note]
    assert len(rounds) == len(result.reactions) >= 20, [r.note for r in result.reactions]
    for reaction in rounds:
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
        # The bucket refills at 100/s: a few ms of flood buys only a few more resets.
        last_stream_id = reaction.goaways[0][0]
        assert last_stream_id <= 2 * (RESET_BUDGET + 50), reaction
    # Work for a cancelled stream is never done: the handler ran only for pairs that a
    # read boundary happened to split (a handful per connection at most).
    handled = sum(ATTACK_PATH in line for line in server.stdout_lines)
    assert handled <= 3 * len(rounds), f"{handled} cancelled requests were handled"
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
