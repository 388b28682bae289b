"""Slowloris: connections that never finish what they started, a byte at a time.

- HTTP/1.1: a request head trickled at one byte every 0.5 s is cut off (the socket is
  closed, no answer) `--request-head-timeout` seconds after its first byte;
- HTTP/2: the same for the client preface (and the first SETTINGS);
- TLS: a connection that never completes its handshake is closed after
  `--tls-handshake-timeout` seconds.

Every connection costs the server one small object meanwhile; the probe's latency
and the server's memory are checked while 30 of them trickle.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable

import pytest

from tests.attacks.support import Reaction, measure, tls_socket
from tests.conftest import ServerProcess
from tests.server.h2wire import HEADERS, PREFACE, frame, settings

TIMEOUT = 2.0  # --request-head-timeout and --tls-handshake-timeout in these tests
SWEEP = 1.0  # timeouts are checked once a second
CONNECTIONS = 30
TRICKLE = 0.5  # seconds between two bytes
RSS_BOUND_KIB = 8 * 1024
H1_HEAD = b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"z" * 200


class Trickler:
    """One connection sending `payload` one byte at a time, until the server closes it."""

    def __init__(self, sock: socket.socket, payload: bytes) -> None:
        self.sock = sock
        self.payload = payload
        self.sent = 0
        self.started = time.monotonic()
        self.closed_after: float | None = None
        self.answer = b""
        sock.setblocking(False)

    def step(self) -> None:
        if self.closed_after is not None:
            return
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self._closed()
                    return
                self.answer += chunk
        except (BlockingIOError, ssl.SSLWantReadError):
            pass
        except OSError:
            self._closed()
            return
        if self.sent < len(self.payload):
            try:
                self.sock.send(self.payload[self.sent : self.sent + 1])
                self.sent += 1
            except (BlockingIOError, ssl.SSLWantWriteError):
                pass
            except OSError:
                self._closed()

    def _closed(self) -> None:
        self.closed_after = time.monotonic() - self.started

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _trickle_round(open_connection: Callable[[int], Trickler]) -> Callable[[int], Reaction]:
    def slowloris_round(port: int) -> Reaction:
        tricklers = [open_connection(port) for _ in range(CONNECTIONS)]
        try:
            deadline = time.monotonic() + TIMEOUT + SWEEP + 4
            while time.monotonic() < deadline:
                for t in tricklers:
                    t.step()
                if all(t.closed_after is not None for t in tricklers):
                    break
                time.sleep(TRICKLE)
            reaction = Reaction(closed=all(t.closed_after is not None for t in tricklers))
            times = [t.closed_after for t in tricklers if t.closed_after is not None]
            reaction.note = ",".join(f"{x:.2f}" for x in times)
            reaction.data_bytes = sum(len(t.answer) for t in tricklers)
            reaction.sent_bytes = max(t.sent for t in tricklers)
            return reaction
        finally:
            for t in tricklers:
                t.close()

    return slowloris_round


def _h1(port: int) -> Trickler:
    return Trickler(tls_socket(port, "http/1.1"), H1_HEAD)


def _h2_preface(port: int) -> Trickler:
    return Trickler(tls_socket(port, "h2"), PREFACE + settings())


def _tls_handshake(port: int) -> Trickler:
    # A TCP connection whose ClientHello never comes (a few bytes of a TLS record header).
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return Trickler(raw, b"\x16\x03\x01\x02\x00\x01" + b"\x00" * 100)


def _h2_header_block(port: int) -> Trickler:
    # The preface and a HEADERS frame without END_HEADERS at once, then CONTINUATION
    # bytes trickled: the request head never completes.
    sock = tls_socket(port, "h2")
    sock.sendall(PREFACE + settings() + frame(HEADERS, 0, 1, b"\x82\x87\x84"))
    return Trickler(sock, b"\x00\x00\x40\x09\x00\x00\x00\x00\x01" + b"\x40" * 64)


def _check(reactions: list[Reaction], *, answer_allowed: bool = False) -> None:
    for reaction in reactions:
        assert reaction.closed, f"still open {TIMEOUT + SWEEP + 4} s later: {reaction.note}"
        times = [float(x) for x in reaction.note.split(",")]
        assert min(times) >= TIMEOUT - 0.5, times  # not cut before the timeout...
        assert max(times) <= TIMEOUT + SWEEP + 2, times  # ...nor long after it
        if not answer_allowed:
            assert reaction.data_bytes == 0, "the server answered an unfinished request"
        # Cut off after as many bytes as the timeout lets through, not the whole head.
        assert reaction.sent_bytes < (TIMEOUT + SWEEP) / TRICKLE + 6


ATTACKS = {
    "h1-request-head": (_h1, "http/1.1", False),
    "h2-preface": (_h2_preface, "h2", True),  # the server's own SETTINGS come first
    "tls-handshake": (_tls_handshake, "h2", False),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_slowloris_is_cut_off_at_the_timeout(
    start_server: Callable[..., ServerProcess], name: str
) -> None:
    open_connection, protocol, answer_allowed = ATTACKS[name]
    server = start_server(
        "--request-head-timeout", str(TIMEOUT), "--tls-handshake-timeout", str(TIMEOUT)
    )
    result = measure(server, _trickle_round(open_connection), protocol=protocol, max_rounds=3)
    print(name, result, [r.note for r in result.reactions])
    _check(result.reactions, answer_allowed=answer_allowed)
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result


def test_h2_header_block_never_finished_is_cut_off(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--request-head-timeout", str(TIMEOUT), "--keep-alive-timeout", "30")
    result = measure(server, _trickle_round(_h2_header_block), max_rounds=3)
    print(result, [r.note for r in result.reactions])
    _check(result.reactions, answer_allowed=True)
    assert result.rss_growth_kib < RSS_BOUND_KIB, result
    assert result.latency_ok, result
