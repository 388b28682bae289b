"""How fast the link emulator itself carries a bulk TCP transfer (it must not be the bottleneck).

    sudo python benchmarks/netem_throughput.py --rtt 50ms --megabytes 200

A sender on the host's loopback (root namespace) streams MEGABYTES to a receiver in
the emulated client namespace, through the forwarder, with no bandwidth limit: the
figure is what the emulator can carry at that RTT. It prints the goodput after the
first second (TCP's slow start over) and over the whole transfer (with --bandwidth: how
close to the limit TCP gets through the emulated queue), the forwarder's
packet counts, and the forwarder's CPU time.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from pathlib import Path

from h2books.argtypes import bandwidth, duration
from h2books.netem.conditions import Conditions
from h2books.netem.emulator import DEFAULT_MTU, EmulatedLink

CHUNK = 1 << 20


def _serve(listener: socket.socket, total: int) -> None:
    connection, _ = listener.accept()
    payload = b"x" * CHUNK
    sent = 0
    with connection:
        while sent < total:
            sent += connection.send(payload[: min(CHUNK, total - sent)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=duration, default=0.05)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--mtu", type=int, default=DEFAULT_MTU)
    parser.add_argument("--bandwidth", type=bandwidth, default=None, help="default: no limit")
    args = parser.parse_args()
    total = args.megabytes * 1_000_000
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sender = threading.Thread(target=_serve, args=(listener, total), daemon=True)
    sender.start()
    link = EmulatedLink(Conditions(rtt=args.rtt, bandwidth=args.bandwidth), mtu=args.mtu)
    with link:
        with link.client_side():
            client = socket.create_connection(("127.0.0.1", port))
        forwarder_pid = link._process.pid if link._process else 0
        received = 0
        start = time.perf_counter()
        mark_time, mark_bytes = 0.0, 0
        with client:
            while True:
                data = client.recv(CHUNK)
                if not data:
                    break
                received += len(data)
                if not mark_time and time.perf_counter() - start >= 1.0:
                    mark_time, mark_bytes = time.perf_counter(), received
        end = time.perf_counter()
        cpu = _cpu_seconds(forwarder_pid)
    sender.join()
    whole = received * 8 / (end - start) / 1e6
    steady = (received - mark_bytes) * 8 / (end - mark_time) / 1e6 if mark_time else whole
    print(
        f"RTT {args.rtt * 1e3:g} ms, limit {args.bandwidth or 'none'}, MTU {args.mtu}: {received / 1e6:.0f} MB in {end - start:.2f} s: "
        f"{whole:.0f} Mbit/s overall, {steady:.0f} Mbit/s after the first second; "
        f"forwarder CPU {cpu:.2f} s"
    )
    print(f"forwarder counters: {link.stats}")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
