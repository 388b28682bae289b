"""Nothing lost on SIGTERM under load, checked frame by frame.

A raw client keeps 100 requests in flight (h2load adds more load on other connections
when it is installed) and SIGTERM arrives. The server sends GOAWAY(2^31-1, NO_ERROR)
and a PING, then the final GOAWAY(last-stream-id) once the PING is answered: every
stream at or below that id must get its complete response; every stream above it
must get nothing at all (it was not processed, so the client can retry it). The
server then exits with status 0.

No latency assertion here: a server that is shutting down tells second clients to go
away, which is the point. Memory is checked during the load.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.attacks.support import H2Peer, get, window_update
from tests.conftest import ServerProcess
from tests.server.h2wire import DATA, END_STREAM, HEADERS, NO_ERROR

IN_FLIGHT = 100
RSS_BOUND_KIB = 32 * 1024
MAX_STREAM_ID = 0x7FFFFFFF


def test_sigterm_completes_every_stream_up_to_the_last_stream_id(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    server = start_server("--graceful-timeout", "10")
    load = None
    h2load = shutil.which("h2load")
    if h2load:
        uris = tmp_path / "uris.txt"
        uris.write_text(
            "".join(f"https://127.0.0.1:{server.port}/book?id={i}\n" for i in range(1, 500))
        )
        load = subprocess.Popen(
            [h2load, "-n", "1000000", "-c", "2", "-m", "50", "-i", str(uris)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    peer = H2Peer(server.port)
    rss_before = server.rss_kib()
    rss_peak = rss_before
    sent: list[int] = []
    bodies: dict[int, bytes] = {}
    done: set[int] = set()
    next_sid = 1
    started = time.monotonic()
    signalled_at = 0.0
    try:
        while not peer.closed:
            goaways = peer.reaction.goaways
            final = len(goaways) >= 2
            # Keep IN_FLIGHT requests open until the final GOAWAY: after the first one
            # the client may still have requests in flight, as real ones do.
            while not final and len(sent) - len(done) < IN_FLIGHT:
                peer.send(get(next_sid, f"/book?id={1 + next_sid % 3000}"))
                sent.append(next_sid)
                next_sid += 2
            if not signalled_at and time.monotonic() - started > 1.0:
                rss_peak = max(rss_peak, server.rss_kib())
                server.signal(signal.SIGTERM)
                signalled_at = time.monotonic()
            try:
                f = peer.read_frame(10)
            except TimeoutError:
                break
            if f is None:
                break
            if f.type == DATA:
                bodies[f.stream_id] = bodies.get(f.stream_id, b"") + f.payload
                if f.payload:
                    peer.send(window_update(0, len(f.payload)))
            if f.type in (HEADERS, DATA) and f.flags & END_STREAM:
                done.add(f.stream_id)
            if not signalled_at:
                rss_peak = max(rss_peak, server.rss_kib()) if len(sent) % 500 == 0 else rss_peak
        peer.close()  # as any client does once the server has closed (TLS close_notify seen)
        assert server.proc is not None
        assert server.proc.wait(20) == 0
    finally:
        peer.close()
        if load is not None:
            load.kill()
            load.wait()

    reaction = peer.reaction
    assert signalled_at, "the load never got going"
    assert reaction.closed
    assert [code for _, code in reaction.goaways] == [NO_ERROR, NO_ERROR], reaction.goaways
    assert reaction.goaways[0][0] == MAX_STREAM_ID
    last = reaction.goaways[1][0]
    below = [sid for sid in sent if sid <= last]
    above = [sid for sid in sent if sid > last]
    assert len(below) > IN_FLIGHT, "SIGTERM came before any real load"
    missing = [sid for sid in below if sid not in done]
    assert not missing, f"{len(missing)} accepted streams lost, e.g. {missing[:5]} (last {last})"
    assert not reaction.resets, reaction.resets
    for sid in below[-IN_FLIGHT:]:
        assert "title" in json.loads(bodies[sid]), sid
    assert not [sid for sid in above if sid in done or sid in bodies], "refused streams answered"
    assert reaction.statuses == {"200": len(below)}, reaction.statuses
    assert rss_peak - rss_before < RSS_BOUND_KIB, (rss_before, rss_peak)
