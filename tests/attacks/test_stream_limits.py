"""Stream limits: SETTINGS_MAX_CONCURRENT_STREAMS is advertised (128) and enforced.

A stream opened beyond it is refused with RST_STREAM REFUSED_STREAM (the client may
retry it); refusals count against the reset budget, so a client that keeps ignoring
the limit ends with GOAWAY ENHANCE_YOUR_CALM. Open streams are bounded per connection,
so memory is too.
"""

from __future__ import annotations

import struct

from tests.attacks.support import H2Peer, Reaction, get, measure, request_block
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    HEADERS,
    REFUSED_STREAM,
    SETTINGS,
    frame,
)

MAX_STREAMS = 128
RESET_BUDGET = 200
RSS_BOUND_KIB = 16 * 1024


def _hold_open(first: int, count: int) -> bytes:
    """POSTs whose bodies never end: each keeps its stream open."""
    return b"".join(
        frame(HEADERS, END_HEADERS, sid, request_block("POST", "/hello"))
        for sid in range(first, first + 2 * count, 2)
    )


def test_max_concurrent_streams_is_advertised_and_excess_refused(server: ServerProcess) -> None:
    peer = H2Peer(server.port)
    try:
        # What the server advertised (id 3 = SETTINGS_MAX_CONCURRENT_STREAMS).
        peer2 = H2Peer(server.port, handshake=False)
        peer2.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
        first = peer2.read_until(lambda f: f.type == SETTINGS)
        assert first is not None
        values = dict(struct.iter_unpack(">HI", first.payload))
        assert values[3] == MAX_STREAMS
        peer2.close()

        peer.send(_hold_open(1, MAX_STREAMS))
        peer.send(_hold_open(1 + 2 * MAX_STREAMS, 20))
        for _ in range(20):
            f = peer.read_until(lambda f: f.type == 3)  # RST_STREAM
            assert f is not None
        assert peer.reaction.resets == {REFUSED_STREAM: 20}
        assert sorted(peer.reaction.reset_streams) == list(range(257, 297, 2))
        # Ending one open stream makes room for exactly one more.
        peer.send(frame(DATA, END_STREAM, 1, b""))
        peer.read_until(lambda f: f.stream_id == 1 and f.flags & END_STREAM != 0)
        peer.send(get(297))
        peer.read_until(lambda f: f.stream_id == 297 and f.flags & END_STREAM != 0)
        assert peer.reaction.statuses["200"] == 1, peer.reaction
        assert peer.reaction.resets == {REFUSED_STREAM: 20}
    finally:
        peer.close()


def flood_round(port: int) -> Reaction:
    peer = H2Peer(port)
    try:
        peer.send(_hold_open(1, MAX_STREAMS))
        first = 1 + 2 * MAX_STREAMS
        for start in range(first, first + 2 * 1000, 200):  # 1,000 streams over the limit
            if not peer.send(_hold_open(start, 100)):
                break
        return peer.drain(5)
    finally:
        peer.close()


def test_ignoring_the_limit_is_enhance_your_calm(server: ServerProcess) -> None:
    result = measure(server, flood_round)
    print(result)
    assert len(result.reactions) >= 5
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert set(reaction.resets) == {REFUSED_STREAM}, reaction
        assert RESET_BUDGET <= reaction.resets[REFUSED_STREAM] <= RESET_BUDGET + 50, reaction
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
