"""Control-frame and empty-frame floods (CVE-2019-9512 PING, -9515 SETTINGS, -9518 empty
frames), sent by a client that does not read what the server answers.

Every frame that costs the server work and gives the peer nothing useful (PING,
SETTINGS, PRIORITY, unknown types, zero-length DATA without END_STREAM, ACKs of nothing
we sent) is charged to a per-connection token bucket (1000, refilled at 500/s); past
it: GOAWAY ENHANCE_YOUR_CALM. The ACKs owed meanwhile are bounded twice: by the budget,
and by the runtime, which stops reading from a peer once 256 KiB of output wait for it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from tests.attacks.support import H2Peer, Reaction, measure, request_block
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    DATA,
    END_HEADERS,
    ENHANCE_YOUR_CALM,
    HEADERS,
    PING,
    PRIORITY,
    SETTINGS,
    frame,
)

CONTROL_BUDGET = 1000
FRAMES = 5000  # per connection: five times the budget
RSS_BOUND_KIB = 16 * 1024


def _settings_values(i: int) -> bytes:
    # Six settings per frame; the window flips so that every frame changes something.
    pairs = [(1, 4096), (2, 0), (3, 100), (4, 65535 - (i & 1)), (5, 16384), (6, 65536)]
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


# name -> (frame number i -> bytes, whether a POST stream must be open first)
FLOODS: dict[str, Callable[[int], bytes]] = {
    "ping": lambda i: frame(PING, 0, 0, struct.pack(">Q", i)),
    "settings-empty": lambda i: frame(SETTINGS, 0, 0),
    "settings-values": _settings_values,
    "priority": lambda i: frame(PRIORITY, 0, 3 + 2 * i, b"\0\0\0\x01\x10"),
    "unknown-type": lambda i: frame(0x20 + i % 200, 0, i % 7, b""),
    "empty-data": lambda i: frame(DATA, 0, 1, b""),
    "settings-ack": lambda i: frame(SETTINGS, ACK, 0),
    "ping-ack": lambda i: frame(PING, ACK, 0, struct.pack(">Q", i)),
}


def make_round(name: str) -> Callable[[int], Reaction]:
    build = FLOODS[name]

    def flood_round(port: int) -> Reaction:
        peer = H2Peer(port)
        try:
            if name == "empty-data":  # DATA needs an open stream: a POST whose body never ends
                peer.send(frame(HEADERS, END_HEADERS, 1, request_block("POST")))
            frames = [build(i) for i in range(FRAMES)]
            # Sent without reading a single byte of what the server answers.
            for start in range(0, FRAMES, 500):
                if not peer.send(b"".join(frames[start : start + 500])):
                    break
            return peer.drain(5)
        finally:
            peer.close()

    return flood_round


@pytest.mark.parametrize("name", list(FLOODS))
def test_flood_is_enhance_your_calm(server: ServerProcess, name: str) -> None:
    result = measure(server, make_round(name))
    print(name, result)
    assert len(result.reactions) >= 5
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
        # Whatever was owed for the flood (PING/SETTINGS ACKs) stayed within the budget
        # (plus what refilled during the few ms the flood took).
        acks = reaction.frames[PING] + reaction.frames[SETTINGS]
        assert acks <= CONTROL_BUDGET + 100, reaction.frames
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
