"""CONTINUATION flood (CVE-2024-27316): a header block that never ends.

A block is cut off at 16 CONTINUATION frames or 128 KiB, whichever comes first, with
GOAWAY ENHANCE_YOUR_CALM; nothing of it is decoded or buffered beyond that.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.attacks.support import H2Peer, Reaction, measure, request_block
from tests.conftest import ServerProcess
from tests.server.h2wire import CONTINUATION, ENHANCE_YOUR_CALM, HEADERS, frame

MAX_CONTINUATIONS = 16
# The peak RSS while the flood runs, over the RSS before it: 12-20 MiB on a loaded 2-core
# machine, for session 10's tree and this one alike (one attack connection at a time, each
# ~0.5 MiB read and freed; the heap's high-water mark swings with how those frees fall).
# 800 rounds in a row stay within the same band, with no growth per round. A run makes
# ~180-750 rounds: keeping what a round reads (~0.5 MiB) crosses this bound within 50.
RSS_BOUND_KIB = 24 * 1024


def _flood(frames: Callable[[], bytes], count: int) -> Callable[[int], Reaction]:
    def flood_round(port: int) -> Reaction:
        peer = H2Peer(port)
        try:
            peer.send(frame(HEADERS, 0, 1, request_block()))  # no END_HEADERS
            sent = 0
            for _ in range(count):
                if peer.has_input() or not peer.send(frames()):
                    break
                sent += 1
            reaction = peer.drain(5)
            reaction.note = "" if sent < count else "the server let the whole flood in"
            return reaction
        finally:
            peer.close()

    return flood_round


# An endless block: 16 KiB fragments of field bytes, far more of them than allowed.
big_fragments = _flood(lambda: frame(CONTINUATION, 0, 1, b"\x40\x01a\x7f" * 4096), 200)
# Many tiny CONTINUATIONs: one octet each.
tiny_fragments = _flood(lambda: frame(CONTINUATION, 0, 1, b"\x82"), 5000)


@pytest.mark.parametrize("attack", [big_fragments, tiny_fragments], ids=["16KiB", "1-octet"])
def test_endless_header_block_is_enhance_your_calm(
    server: ServerProcess, attack: Callable[[int], Reaction]
) -> None:
    result = measure(server, attack)
    print(result)
    assert len(result.reactions) >= 5
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
        assert not reaction.statuses and not reaction.resets, "part of the block was acted on"
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result


def test_block_at_the_continuation_limit_is_served(server: ServerProcess) -> None:
    """The limit does not catch honest use: a block split in 16 CONTINUATIONs is fine."""
    block = request_block()
    pieces = [block[:2]] + [block[2 + i : 3 + i] for i in range(15)] + [block[17:]]
    assert len(pieces) == 1 + MAX_CONTINUATIONS and all(pieces)
    peer = H2Peer(server.port)
    try:
        data = frame(HEADERS, 0x1, 1, pieces[0])
        for i, piece in enumerate(pieces[1:], 1):
            data += frame(CONTINUATION, 0x4 if i == MAX_CONTINUATIONS else 0, 1, piece)
        peer.send(data)
        peer.read_until(lambda f: f.stream_id == 1 and f.flags & 0x1 != 0)
        assert peer.reaction.statuses["200"] == 1, peer.reaction
    finally:
        peer.close()
