"""HPACK bomb (CVE-2016-6581): one big dynamic-table entry referenced thousands of times.

SETTINGS_MAX_HEADER_LIST_SIZE is 64 KiB and is enforced while decoding, on the decoded
size. A list somewhat over it gets a 431 (the table stays in sync); decoding stops
outright once the list passes twice the limit, and the connection ends with GOAWAY
ENHANCE_YOUR_CALM: a 16 KiB frame of one-octet references would otherwise stand for
64 MB of fields.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.attacks.support import H2Peer, Reaction, measure, request_block
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    HEADERS,
    frame,
)

# Undefended, one bomb block stands for tens of MB of fields; allocator noise stays well under this.
RSS_BOUND_KIB = 24 * 1024
VALUE = b"v" * 4000  # with its 6-octet name and 32 of overhead: 4038 of the 4096-octet table
# Literal with incremental indexing, new name "x-bomb": becomes dynamic entry 62 (0xbe).
INSERT = b"\x40\x06x-bomb\x7f" + bytes([(4000 - 127) & 0x7F | 0x80, (4000 - 127) >> 7]) + VALUE
REFERENCE = b"\xbe"


BOMBS = 30  # per connection, each on a new stream


def _bomb(frames_per_block: int) -> Callable[[int], Reaction]:
    def bomb_round(port: int) -> Reaction:
        peer = H2Peer(port)
        try:
            # An honest-looking request plants the entry (and is answered: 4 KiB is fine).
            peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block() + INSERT))
            peer.read_until(lambda f: f.stream_id == 1 and f.flags & END_STREAM != 0)
            fragment = REFERENCE * 16000
            for sid in range(3, 3 + 2 * BOMBS, 2):
                flags = END_STREAM | (END_HEADERS if frames_per_block == 1 else 0)
                data = frame(HEADERS, flags, sid, request_block() + fragment)
                for i in range(1, frames_per_block):
                    last = END_HEADERS if i == frames_per_block - 1 else 0
                    data += frame(CONTINUATION, last, sid, fragment)
                if not peer.send(data):
                    break
            return peer.drain(5)
        finally:
            peer.close()

    return bomb_round


@pytest.mark.parametrize("frames_per_block", [1, 8], ids=["one-frame", "with-continuations"])
def test_hpack_bomb_is_refused_with_enhance_your_calm(
    server: ServerProcess, frames_per_block: int
) -> None:
    result = measure(server, _bomb(frames_per_block))
    print(result)
    assert len(result.reactions) >= 5
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert reaction.statuses == {"200": 1}, reaction  # the planting request only
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.goaways[0][0] == 3  # the bomb's stream was the last one seen
        assert reaction.closed
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result


def test_moderately_oversized_header_list_gets_431(server: ServerProcess) -> None:
    """20 references (~80 KB decoded): over the 64 KiB limit, short of the bomb line."""
    peer = H2Peer(server.port)
    try:
        peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_block() + INSERT))
        peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block() + REFERENCE * 20))
        peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 5, request_block() + REFERENCE))
        peer.read_until(lambda f: f.stream_id == 5 and f.flags & END_STREAM != 0)
        assert peer.reaction.statuses == {"200": 2, "431": 1}, peer.reaction
        assert not peer.reaction.goaways
    finally:
        peer.close()
