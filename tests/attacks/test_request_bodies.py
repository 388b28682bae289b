"""Request bodies that never end, on every stream a connection may open.

The server buffers a request body for its handler, up to `--max-body-size` per
stream. What bounds the total per connection is flow control: the peer can only send
what the server credits, so credit must follow what handlers consume, not what
arrives. Here a client opens 128 POST streams and sends each one almost the maximum
body, never ending any, strictly within the windows the server grants.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

from tests.attacks.support import H2Peer, Reaction, measure, request_block
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    DATA,
    END_HEADERS,
    HEADERS,
    PREFACE,
    SETTINGS,
    WINDOW_UPDATE,
    frame,
    settings,
)

STREAMS = 128
BODY = 1 << 20  # --max-body-size; each stream sends all but its last octet
CONNECTION_WINDOW = 1 << 24  # the server's default connection receive window
# What a connection may legitimately make the server hold: its connection window.
RSS_BOUND_KIB = (CONNECTION_WINDOW >> 10) + 16 * 1024


def body_flood_round(port: int) -> Reaction:
    peer = H2Peer(port, handshake=False)
    try:
        peer.send(PREFACE + settings())
        stream_window = 65535
        connection_window = 65535
        windows: dict[int, int] = {}
        settled = False
        sids = list(range(1, 2 * STREAMS, 2))
        sent = dict.fromkeys(sids, 0)
        deadline = time.monotonic() + 3.0

        def take(f_type: int, flags: int, sid: int, payload: bytes) -> None:
            nonlocal stream_window, connection_window, settled
            if f_type == SETTINGS and not flags & ACK:
                values = dict(struct.iter_unpack(">HI", payload))
                stream_window = values.get(4, stream_window)
                peer.send(frame(SETTINGS, ACK, 0))
                settled = True
            elif f_type == WINDOW_UPDATE:
                increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                if sid == 0:
                    connection_window += increment
                else:
                    windows[sid] = windows.get(sid, stream_window) + increment

        while not settled:
            f = peer.read_frame(5)
            assert f is not None
            take(f.type, f.flags, f.stream_id, f.payload)
        for sid in sids:
            peer.send(frame(HEADERS, END_HEADERS, sid, request_block("POST", "/hello")))
            windows[sid] = stream_window
        chunk = b"b" * 16384
        while time.monotonic() < deadline and not peer.closed:
            progress = False
            for sid in sids:
                room = min(windows[sid], connection_window, BODY - 1 - sent[sid], len(chunk))
                if room > 0:
                    if not peer.send(frame(DATA, 0, sid, chunk[:room])):
                        break
                    windows[sid] -= room
                    connection_window -= room
                    sent[sid] += room
                    progress = True
            try:
                while peer.has_input():
                    f = peer.read_frame(1)
                    if f is None:
                        break
                    take(f.type, f.flags, f.stream_id, f.payload)
                if not progress:
                    f = peer.read_frame(0.2)
                    if f is not None:
                        take(f.type, f.flags, f.stream_id, f.payload)
            except TimeoutError:
                pass
        reaction = peer.reaction
        reaction.sent_bytes = sum(sent.values())  # body octets the server's windows let in
        return reaction
    finally:
        peer.close()


def test_unfinished_bodies_are_bounded_by_the_connection_window(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--max-body-size", str(BODY))
    result = measure(server, body_flood_round, max_rounds=2)
    print(result, [r.sent_bytes for r in result.reactions])
    for reaction in result.reactions:
        assert not reaction.note, reaction.note
        # The server stops crediting once a window's worth is buffered.
        assert reaction.sent_bytes <= CONNECTION_WINDOW + STREAMS * 65535, reaction.sent_bytes
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
