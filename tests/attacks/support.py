"""What every attack test shares: context-free request blocks, a reaction recorder, a
latency probe on a connection of its own, an attacker in a forked process, RSS readings.

Each test checks three things (issue 6):

1. the reaction: the exact GOAWAY/RST_STREAM code, HTTP status or close;
2. bounded memory: the server's RSS (``/proc/PID/status``), sampled all through the
   attack, may grow by at most the bound the test documents;
3. latency: a second client's median latency during the attack stays within
   ``max(2 x baseline, LATENCY_FLOOR_MS)``.

The attacker runs in a forked process so that it competes with the server for CPU,
not with the probe for the GIL (a busy thread would delay the probe's reads by the
interpreter's 5 ms switch interval and make the probe measure itself). The probe
spaces its requests out over about a second and a half, so its samples fall across
every phase of the attack (handshakes, floods, the server's answer), and the baseline
is measured the same way just before. The box is small and shared: a floor of a few
milliseconds keeps scheduler noise from failing a test, and a failing latency check
is measured again once (baseline and attack) before it counts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import select
import socket
import ssl
import statistics
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import hpack

from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    frame,
    settings,
)

# Below this the probe's median is noise on a 2-core box shared with the attacker
# (baseline medians are ~0.5-1 ms with the probe's spacing, but a busy machine pushes the
# median under a harmless attack to 8-15 ms now and then: both trees did, 2026-12-03);
# every attack that matters costs far more (Hypercorn's SETTINGS flood: 700-2,000 ms).
LATENCY_FLOOR_MS = 25.0
PROBE_REQUESTS = 30
PROBE_SPACING = 0.05  # seconds between two probe requests


# -- frames -----------------------------------------------------------------------------


def _literal(name_index: int, value: bytes) -> bytes:
    """Literal field without indexing, name from the static table (RFC 7541 §6.2.2)."""
    assert name_index < 15 and len(value) < 127
    return bytes([name_index, len(value)]) + value


_STATIC_METHOD = {"GET": b"\x82", "POST": b"\x83"}


def request_block(method: str = "GET", path: str = "/hello", extra: bytes = b"") -> bytes:
    """A context-free HPACK block (static table and literals without indexing only),
    so one precomputed block can be replayed on any connection, any number of times."""
    method_field = _STATIC_METHOD.get(method) or _literal(2, method.encode())
    return (
        method_field
        + b"\x87"  # :scheme https
        + _literal(1, b"localhost")  # :authority
        + _literal(4, path.encode())  # :path
        + extra
    )


def literal_field(name: bytes, value: bytes) -> bytes:
    """A literal field with a literal name, without indexing (any name, any length)."""
    return b"\x00" + _string(name) + _string(value)


def _string(data: bytes) -> bytes:
    return _integer(len(data), 7) + data


def _integer(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def get(stream_id: int, path: str = "/hello") -> bytes:
    return frame(HEADERS, END_HEADERS | END_STREAM, stream_id, request_block("GET", path))


def rst(stream_id: int, code: int = 0x8) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


# -- connections ------------------------------------------------------------------------


def tls_socket(port: int, alpn: str = "h2", timeout: float = 10.0) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    context = ssl._create_unverified_context()
    context.set_alpn_protocols([alpn])
    sock = context.wrap_socket(raw, server_hostname="localhost")
    assert sock.selected_alpn_protocol() == alpn
    return sock


class H2Peer:
    """A raw HTTP/2 connection: send bytes, read frames, record how the server reacted."""

    def __init__(self, port: int, *, handshake: bool = True, **our_settings: int) -> None:
        self.sock = tls_socket(port)
        self.buffer = bytearray()
        self.closed = False
        self.decoder = hpack.Decoder()
        self.reaction = Reaction()
        if handshake:
            # Settled: both SETTINGS sent and acknowledged, nothing left to read.
            self.sock.sendall(PREFACE + settings(**our_settings))
            self.read_until(lambda f: f.type == SETTINGS and not f.flags & ACK)
            self.sock.sendall(frame(SETTINGS, ACK, 0))
            self.read_until(lambda f: f.type == SETTINGS and bool(f.flags & ACK))

    def has_input(self) -> bool:
        """Something from the server is waiting (a flood stops sending when it answers)."""
        if self.buffer or self.sock.pending():
            return True
        return bool(select.select([self.sock], [], [], 0)[0])

    def send(self, data: bytes) -> bool:
        """False once the server has closed or reset the connection."""
        try:
            self.sock.sendall(data)
        except OSError:
            self._closed_now()
            return False
        return True

    def _closed_now(self) -> None:
        """The server closed or reset the connection, as seen just now (reading or sending)."""
        if not self.closed:
            self.closed = True
            self.reaction.closed = True
            self.reaction.closed_at = time.monotonic()

    def read_frame(self, timeout: float) -> Frame | None:
        """The next frame; None once the connection is closed. TimeoutError if none comes."""
        buffer = self.buffer
        deadline = time.monotonic() + timeout
        while len(buffer) < 9 or len(buffer) < 9 + int.from_bytes(buffer[:3], "big"):
            if self.closed:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from the server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(262144)
            except TimeoutError:
                raise TimeoutError("no frame from the server") from None
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                self._closed_now()
                return None
            buffer += chunk
        length = int.from_bytes(buffer[:3], "big")
        kind, flags = buffer[3], buffer[4]
        stream_id = struct.unpack_from(">I", buffer, 5)[0] & 0x7FFFFFFF
        payload = bytes(buffer[9 : 9 + length])
        del buffer[: 9 + length]
        f = Frame(kind, flags, stream_id, payload)
        self.reaction.record(f, self)
        return f

    def read_until(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> Frame | None:
        deadline = time.monotonic() + timeout
        while True:
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f is None or predicate(f):
                return f

    def drain(self, timeout: float = 10.0) -> Reaction:
        """Read until the server closes (or `timeout` passes); answer its PINGs."""
        deadline = time.monotonic() + timeout
        try:
            while self.read_frame(max(0.0, deadline - time.monotonic())) is not None:
                pass
        except TimeoutError:
            pass
        return self.reaction

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@dataclass
class Frame:
    type: int
    flags: int
    stream_id: int
    payload: bytes

    @property
    def error_code(self) -> int:
        offset = 4 if self.type == GOAWAY else 0
        return int(struct.unpack_from(">I", self.payload, offset)[0])


@dataclass
class Reaction:
    """Everything the server said to one attacking connection that matters here."""

    goaways: list[tuple[int, int]] = field(default_factory=list)  # (last_stream_id, code)
    resets: Counter[int] = field(default_factory=Counter)  # error code -> count
    reset_streams: list[int] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ended_streams: list[int] = field(default_factory=list)  # END_STREAM seen
    data_bytes: int = 0  # DATA payload octets received
    sent_bytes: int = 0  # what the attacker got through, when a test counts it
    frames: Counter[int] = field(default_factory=Counter)  # frame type -> count
    closed: bool = False
    closed_at: float = 0.0  # time.monotonic() when the close was seen
    note: str = ""

    def record(self, f: Frame, peer: H2Peer | None = None) -> None:
        self.frames[f.type] += 1
        if f.type == GOAWAY:
            self.goaways.append((struct.unpack_from(">I", f.payload)[0] & 0x7FFFFFFF, f.error_code))
        elif f.type == RST_STREAM:
            self.resets[f.error_code] += 1
            self.reset_streams.append(f.stream_id)
        elif f.type == HEADERS and peer is not None:
            block = f.payload
            if f.flags & 0x8:  # PADDED
                block = block[1 : len(block) - block[0]]
            if f.flags & 0x20:  # PRIORITY
                block = block[5:]
            try:
                for name, value in peer.decoder.decode(block):
                    if name in (":status", b":status"):
                        self.statuses[value if isinstance(value, str) else value.decode()] += 1
            except Exception as exc:  # the server's block must decode: note it for the test
                self.note = f"undecodable HEADERS from the server: {exc!r}"
        elif f.type == DATA:
            self.data_bytes += len(f.payload)
        elif f.type == PING and not f.flags & ACK and peer is not None:
            peer.send(frame(PING, ACK, 0, f.payload))
        if f.type in (HEADERS, DATA) and f.flags & END_STREAM:
            self.ended_streams.append(f.stream_id)

    @property
    def goaway_codes(self) -> list[int]:
        return [code for _, code in self.goaways]


# -- the latency probe ------------------------------------------------------------------


class Probe:
    """Sequential requests on a connection of its own.

    An attack must not hurt other clients: by default a probe request that fails (reset,
    connection closed, no answer in 10 s) fails the test. `reconnect=True` is for tests
    where the server may rightly close the probe's connection (the connection cap)."""

    def __init__(
        self,
        server: ServerProcess,
        protocol: str = "h2",
        path: str = "/hello",
        *,
        reconnect: bool = False,
    ) -> None:
        self.server = server
        self.protocol = protocol
        self.path = path
        self.reconnect = reconnect
        self.peer: H2Peer | None = None
        self.h1: ssl.SSLSocket | None = None
        self.next_stream = 1

    def request_ms(self) -> float:
        """One request's round trip in milliseconds (connection setup not included)."""
        for _attempt in range(3 if self.reconnect else 1):
            try:
                if self.protocol == "h2":
                    return self._h2_request()
                return self._h1_request()
            except (OSError, AssertionError, TimeoutError):
                self.close()
                if not self.reconnect:
                    raise
        raise AssertionError("the probe could not complete a request in three attempts")

    def _h2_request(self) -> float:
        if self.peer is None or self.next_stream > 10001:
            self.close()
            self.peer = H2Peer(self.server.port)
            self.next_stream = 1
        peer = self.peer
        sid = self.next_stream
        self.next_stream += 2
        request = get(sid, self.path)
        start = time.perf_counter()
        peer.send(request)
        while True:
            f = peer.read_frame(10.0)
            assert f is not None, "probe connection closed"
            if f.stream_id == sid and f.type in (HEADERS, DATA) and f.flags & END_STREAM:
                break
            assert not (f.type == RST_STREAM and f.stream_id == sid), "probe stream reset"
        elapsed = time.perf_counter() - start
        if peer.reaction.data_bytes > 1 << 20:  # keep the connection window open
            peer.send(window_update(0, peer.reaction.data_bytes))
            peer.reaction.data_bytes = 0
        return elapsed * 1000

    def _h1_request(self) -> float:
        if self.h1 is None:
            self.h1 = tls_socket(self.server.port, "http/1.1")
        sock = self.h1
        request = f"GET {self.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
        start = time.perf_counter()
        sock.sendall(request)
        data = b""
        while True:
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                head = data[:head_end].lower()
                at = head.find(b"content-length:")
                assert at >= 0, head
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
                if len(data) >= head_end + 4 + length:
                    break
            chunk = sock.recv(65536)
            assert chunk, "probe connection closed"
            data += chunk
        return (time.perf_counter() - start) * 1000

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
            self.peer = None
        if self.h1 is not None:
            with contextlib.suppress(OSError):
                self.h1.close()
            self.h1 = None


# -- the attacker process ---------------------------------------------------------------

# One attack round: given the server's port, run one attacking connection (or a batch
# of them) and return what the server did. Called again and again until told to stop.
AttackRound = Callable[[int], Reaction]


def _attacker_main(
    attack: AttackRound,
    port: int,
    stop: EventType,
    started: EventType,
    results: multiprocessing.connection.Connection,
    max_rounds: int,
    deadline: float,
) -> None:
    reactions: list[Reaction] = []
    try:
        while len(reactions) < max_rounds and time.monotonic() < deadline:
            started.set()
            try:
                reactions.append(attack(port))
            except Exception as exc:  # reported to the test, which decides
                reactions.append(Reaction(note=f"attack round failed: {exc!r}"))
            if stop.is_set():
                break
    finally:
        started.set()
        results.send(reactions)
        results.close()


@contextmanager
def attacker(
    attack: AttackRound, port: int, *, max_rounds: int = 1000, seconds: float = 15.0
) -> Iterator[Callable[[], list[Reaction]]]:
    """Run `attack` in rounds in a forked process; yields a function that stops the
    attacker and returns every round's reaction (at least one)."""
    context = multiprocessing.get_context("fork")
    stop = context.Event()
    started = context.Event()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_attacker_main,
        args=(attack, port, stop, started, sender, max_rounds, time.monotonic() + seconds),
        daemon=True,
    )
    process.start()
    sender.close()
    started.wait(10)
    collected: list[Reaction] = []

    def finish() -> list[Reaction]:
        if not collected:
            stop.set()
            if receiver.poll(seconds + 15):
                collected.extend(receiver.recv())
            process.join(5)
            assert collected, "the attacker reported nothing"
        return collected

    try:
        yield finish
    finally:
        stop.set()
        if process.is_alive():
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        receiver.close()


# -- measuring --------------------------------------------------------------------------


@dataclass
class Measurement:
    baseline_ms: float
    attack_ms: float
    rss_before_kib: int
    rss_peak_kib: int
    rss_after_kib: int
    reactions: list[Reaction]

    @property
    def rss_growth_kib(self) -> int:
        return max(self.rss_peak_kib, self.rss_after_kib) - self.rss_before_kib

    @property
    def latency_ok(self) -> bool:
        return self.attack_ms <= max(2 * self.baseline_ms, LATENCY_FLOOR_MS)

    def __str__(self) -> str:
        return (
            f"latency baseline {self.baseline_ms:.2f} ms, under attack {self.attack_ms:.2f} ms; "
            f"RSS {self.rss_before_kib} KiB -> peak {self.rss_peak_kib} KiB, "
            f"after {self.rss_after_kib} KiB; {len(self.reactions)} attack rounds"
        )


def probe_median(probe: Probe, server: ServerProcess, peak: list[int]) -> float:
    """The median of PROBE_REQUESTS spaced-out requests; `peak[0]` tracks the server's
    highest RSS seen meanwhile."""
    samples = []
    for _ in range(PROBE_REQUESTS):
        samples.append(probe.request_ms())
        peak[0] = max(peak[0], server.rss_kib())
        time.sleep(PROBE_SPACING)
    return statistics.median(samples)


def measure(
    server: ServerProcess,
    attack: AttackRound,
    *,
    protocol: str = "h2",
    max_rounds: int = 1000,
    seconds: float = 15.0,
) -> Measurement:
    """Baseline latency, then the same measurement while `attack` runs; repeated (three
    attempts in all) while the latency check fails: on a shared VM one probe in a slow
    minute is not the attack's doing, three in a row are. Reactions of every attempt are
    kept."""
    reactions: list[Reaction] = []
    result: Measurement | None = None
    for _attempt in range(3):
        probe = Probe(server, protocol)
        try:
            for _ in range(5):  # warm the connection and the server's caches
                probe.request_ms()
            baseline = probe_median(probe, server, [0])
            before = server.rss_kib()
            peak = [before]
            with attacker(attack, server.port, max_rounds=max_rounds, seconds=seconds) as finish:
                time.sleep(0.2)  # let the first round get going
                under_attack = probe_median(probe, server, peak)
                reactions.extend(finish())
            result = Measurement(
                baseline, under_attack, before, peak[0], server.rss_kib(), list(reactions)
            )
        finally:
            probe.close()
        if result.latency_ok:
            break
    assert result is not None
    return result


# -- the server's sockets, seen from /proc ----------------------------------------------


def tcp_table(pid: int) -> list[list[str]]:
    """The rows of /proc/net/tcp and tcp6, as seen from process `pid`'s namespace."""
    rows = []
    for table in ("tcp", "tcp6"):
        rows += [
            line.split() for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        ]
    return rows


def held_connections(pid: int) -> int:
    """TCP connections (not listening sockets) among the descriptors of process `pid`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().name
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    # Field 3 is the state (0A: LISTEN), field 9 the inode. A set: the kernel writes the
    # table a page at a time, so a row can appear twice when the table changes meanwhile.
    return len({row[9] for row in tcp_table(pid) if row[9] in inodes and row[3] != "0A"})


def quiet(pid: int, *ports: int) -> bool:
    """No connection at all to the server's `ports`, not even one waiting to be accepted
    (the check that the server is up connects once)."""
    local = {f":{port:04X}" for port in ports}
    return not any(row[3] != "0A" and row[1][-5:] in local for row in tcp_table(pid))


def read_by_the_server(pid: int, server_port: int, client: socket.socket) -> bool:
    """The server's end of `client` has nothing left unread in its receive queue (or is
    gone): whatever the client sent has been handed to the server's protocol."""
    client_port = client.getsockname()[1]
    for row in tcp_table(pid):
        local_port = int(row[1].rsplit(":", 1)[1], 16)
        remote_port = int(row[2].rsplit(":", 1)[1], 16)
        if local_port == server_port and remote_port == client_port:
            return int(row[4].split(":")[1], 16) == 0  # tx_queue:rx_queue
    return True


def unread_by_the_server(pid: int, server_port: int) -> int:
    """Octets waiting in the receive queues of the server's connections on `server_port`."""
    total = 0
    for row in tcp_table(pid):
        if int(row[1].rsplit(":", 1)[1], 16) == server_port and row[3] != "0A":
            total += int(row[4].split(":")[1], 16)
    return total


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Whether `condition()` came true within `timeout` seconds (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
