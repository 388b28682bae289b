"""MadeYouReset (CVE-2025-8671): frames that make the *server* reset streams.

The RST_STREAMs we are provoked into count against the same per-connection budget as
the peer's own resets (200, refilled at 100/s); past it: GOAWAY ENHANCE_YOUR_CALM.
Each provocation is sent as one TLS record so that it is read in one piece: the
stream is still open when the offending frame arrives.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.attacks.support import H2Peer, Reaction, measure, request_block, window_update
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    DATA,
    END_HEADERS,
    END_STREAM,
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    HEADERS,
    PROTOCOL_ERROR,
    STREAM_CLOSED,
    frame,
)

STREAMS = 600  # per connection: three times the budget
RESET_BUDGET = 200
RSS_BOUND_KIB = 16 * 1024


def _open_post(sid: int, extra: bytes = b"") -> bytes:
    return frame(HEADERS, END_HEADERS, sid, request_block("POST", "/hello", extra))


def _content_length(value: bytes) -> bytes:
    return b"\x0f\x0d" + bytes([len(value)]) + value  # content-length (static 28), no indexing


# Each provocation: (frames sent in one record, the RST_STREAM code it must earn).
PROVOCATIONS = {
    "window-update-0": (lambda sid: _open_post(sid) + window_update(sid, 0), PROTOCOL_ERROR),
    "window-overflow": (
        lambda sid: _open_post(sid) + window_update(sid, 0x7FFFFFFF),
        FLOW_CONTROL_ERROR,
    ),
    "data-after-end-stream": (
        lambda sid: (
            frame(HEADERS, END_HEADERS | END_STREAM, sid, request_block())
            + frame(DATA, 0, sid, b"late")
        ),
        STREAM_CLOSED,
    ),
    "content-length-mismatch": (
        lambda sid: (
            _open_post(sid, _content_length(b"1")) + frame(DATA, END_STREAM, sid, b"too long")
        ),
        PROTOCOL_ERROR,
    ),
}


def make_round(kind: str) -> Callable[[int], Reaction]:
    provoke, _ = PROVOCATIONS[kind]

    def flood_round(port: int) -> Reaction:
        peer = H2Peer(port)
        try:
            for sid in range(1, 2 * STREAMS, 2):
                if not peer.send(provoke(sid)):
                    break
            return peer.drain(5)
        finally:
            peer.close()

    return flood_round


def test_each_provocation_earns_its_exact_reset(server: ServerProcess) -> None:
    for kind, (provoke, code) in PROVOCATIONS.items():
        peer = H2Peer(server.port)
        try:
            peer.send(provoke(1))
            f = peer.read_until(lambda f: f.type == 3)  # RST_STREAM
            assert f is not None and f.stream_id == 1 and f.error_code == code, (kind, f)
            peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, request_block()))
            peer.read_until(lambda f: f.stream_id == 3 and f.flags & END_STREAM != 0)
            assert peer.reaction.statuses["200"] == 1, (kind, peer.reaction)
        finally:
            peer.close()


@pytest.mark.parametrize("kind", list(PROVOCATIONS))
def test_provoked_reset_flood_is_enhance_your_calm(server: ServerProcess, kind: str) -> None:
    result = measure(server, make_round(kind))
    print(kind, result)
    _, code = PROVOCATIONS[kind]
    assert len(result.reactions) >= 5
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        assert reaction.goaway_codes == [ENHANCE_YOUR_CALM], reaction
        assert reaction.closed
        assert set(reaction.resets) == {code}, reaction
        # Resets beyond the budget never happen: the connection ends first.
        assert RESET_BUDGET <= reaction.resets[code] <= RESET_BUDGET + 50, reaction
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
