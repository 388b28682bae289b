"""Rapid Reset (CVE-2023-44487): HEADERS immediately cancelled by RST_STREAM, in bulk.

The server counts client resets in a token bucket per connection (200, refilled at
100/s, like nghttp2 and h2o); past it: GOAWAY ENHANCE_YOUR_CALM and close. The
attacker reconnects after every GOAWAY, as real ones do.
"""

from __future__ import annotations

from tests.attacks.support import H2Peer, Reaction, get, measure, rst
from tests.conftest import ServerProcess
from tests.server.h2wire import CANCEL, ENHANCE_YOUR_CALM

PAIRS = 1000  # per connection: five times the budget
# A flood costs each connection a bounded amount of state; peaks stay well below this.
RSS_BOUND_KIB = 16 * 1024


def flood_round(port: int) -> Reaction:
    peer = H2Peer(port)
    try:
        flood = b"".join(get(sid) + rst(sid, CANCEL) for sid in range(1, 2 * PAIRS, 2))
        for start in range(0, len(flood), 16384):
            if not peer.send(flood[start : start + 16384]):
                break
        return peer.drain(5)
    finally:
        peer.close()


def test_rapid_reset_is_cut_off_with_enhance_your_calm(server: ServerProcess) -> None:
    result = measure(server, flood_round, max_rounds=200)
    print(result)
    assert result.reactions
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
        last_stream_id = reaction.goaways[0][0]
        assert last_stream_id < 2 * PAIRS - 1, "the whole flood was processed"
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
