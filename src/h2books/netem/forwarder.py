"""The forwarder: two TUN devices and the link model between them, in a process of its own.

Topology. The client lives in a namespace of its own (``h2b-<pid>-<n>``); the server side
is the root namespace, where the user's server already runs::

    client namespace                  forwarder (this process)              root namespace
    socket -> 127.0.0.1:8443   ->   h2b<pid>c<n>  --link model-->  h2b<pid>s<n>  ->  server on
              (src 198.18.x.y)                   <--link model--                    127.0.0.1

In the client namespace the loopback stays down and every route, 127.0.0.0/8 included,
goes through the client TUN device, so ``https://localhost:8443/`` means the server on
the host's loopback, reached through the emulated link, with the same URL and the same
TLS server name. The packets keep their addresses end to end (no NAT, no checksum to
redo): ``route_localnet`` on the two TUN devices lets 127.0.0.1 cross them, and the
host routes the client's address (one /32 in 198.18.0.0/15, the range RFC 2544 keeps
for benchmarks) back to the server-side device. Only the two devices and that route
are made, all three gone when this process exits (non-persistent TUN devices vanish
with their descriptors). Why not two namespaces: a server the user already runs is in
the root namespace, and so are the bench's servers; why a process of its own: the
forwarder's CPU must not count as the client's or the server's. Nor take it: the
forwarder starts on every CPU, whatever its owner was pinned to (`float_on_all_cpus`).
Pinned with a crawl client, as it inherited, it spent ~30 ms of that core on the ~900
packets of a push crawl, in the crawl's busiest stretch.

The loop reads every packet waiting on a device (up to a batch), hands them to that
direction's `LinkDirection`, and writes each packet to the other device when it is due;
epoll's timeout is the next due time (millisecond resolution: a packet can leave up
to ~1 ms late, never early). It stops on SIGTERM, SIGINT, or when its parent dies
(PR_SET_PDEATHSIG), and prints its counters as one JSON line on the way out.

Run by `h2books.netem.emulator.EmulatedLink`:
``python -m h2books.netem.forwarder CONFIG_JSON``; prints one JSON line when ready.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import select
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from h2books.lifetime import die_with_parent
from h2books.netem.conditions import Conditions
from h2books.netem.link import LinkDirection
from h2books.netem.namespaces import NETNS_DIR, NamespaceError, enter_path, run_ip
from h2books.netem.tun import TunError, open_tun

__all__ = ["ADDRESS_BLOCK", "client_address_candidates", "float_on_all_cpus", "main"]

ADDRESS_BLOCK = "198.18.0.0/15"
_BATCH = 256  # packets read from one device before looking at the other and at the clock
_MAX_PACKET = 65_535


def client_address_candidates(pid: int, instance: int) -> list[str]:
    """Addresses to try for the client, starting at one the pid makes unlikely to be taken."""
    start = (pid * 8 + instance) % (1 << 15)
    picks = []
    for step in range(64):
        index = (start + step * 97) % (1 << 15)  # 32,768 slots of 4 addresses in the /15
        value = (198 << 24) | (18 << 16) | (index * 4 + 2)
        picks.append(".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0)))
    return picks


def float_on_all_cpus() -> None:
    """Undo the CPU affinity inherited from the owner (a benchmark that pinned its client
    to one core): the link is not one of the measured processes. Where a cpuset allows
    fewer CPUs, the kernel keeps the ones it allows."""
    count = os.cpu_count() or 1
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, range(count))


def _write_sysctl(path: str, value: str) -> None:
    with contextlib.suppress(FileNotFoundError):  # IPv6 disabled in the kernel, say
        Path(path).write_text(value)


def _set_up_device(name: str) -> None:
    """Flags for one of our TUN devices, from inside its namespace."""
    _write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")
    # No IPv6 on the link: router solicitations would only add noise to the counts.
    _write_sysctl(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1")


def _prepare(config: dict[str, Any]) -> tuple[int, int, str]:
    """Make both devices and their routes; return (client fd, server fd, client address)."""
    namespace = config["namespace"]
    client_dev, server_dev, mtu = config["client_dev"], config["server_dev"], config["mtu"]
    namespace_path = NETNS_DIR / namespace
    server_fd = open_tun(server_dev)
    _set_up_device(server_dev)
    run_ip("link", "set", "dev", server_dev, "mtu", str(mtu), "up")
    address = ""
    for candidate in client_address_candidates(config["owner_pid"], config["instance"]):
        try:  # `ip route add` fails if the /32 is routed already: claiming it is atomic
            run_ip("route", "add", f"{candidate}/32", "dev", server_dev)
        except NamespaceError:
            continue
        address = candidate
        break
    if not address:
        raise NamespaceError(f"no free client address in {ADDRESS_BLOCK}")
    with enter_path(namespace_path):
        client_fd = open_tun(client_dev)
        _set_up_device(client_dev)
    run_ip("-n", namespace, "link", "set", "dev", client_dev, "mtu", str(mtu), "up")
    run_ip("-n", namespace, "address", "add", f"{address}/32", "dev", client_dev)
    for destination in ("default", "127.0.0.0/8"):
        run_ip(
            "-n", namespace, "route", "add", destination, "dev", client_dev, "src", address
        )  # fmt: skip
    return client_fd, server_fd, address


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def forward(client_fd: int, server_fd: int, up: LinkDirection, down: LinkDirection) -> None:
    """Move packets until `_Stop`: client -> `up` -> server, server -> `down` -> client."""
    poller = select.epoll()
    poller.register(client_fd, select.EPOLLIN)
    poller.register(server_fd, select.EPOLLIN)
    inbound = {client_fd: up, server_fd: down}
    outputs = ((up, server_fd), (down, client_fd))
    read, write, clock = os.read, os.write, time.monotonic
    try:
        while True:
            now = clock()
            due_next = None
            for link, out_fd in outputs:
                for packet in link.take_due(now):
                    try:
                        write(out_fd, packet)
                    except OSError as exc:  # the kernel's backlog is full: the packet is lost
                        if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.EINVAL):
                            raise
                due = link.next_due()
                if due is not None and (due_next is None or due < due_next):
                    due_next = due
            timeout = -1.0 if due_next is None else max(0.0, due_next - clock())
            events = poller.poll(timeout)
            now = clock()
            for fd, _mask in events:
                link = inbound[fd]
                for _ in range(_BATCH):
                    try:
                        packet = read(fd, _MAX_PACKET)
                    except BlockingIOError:
                        break
                    link.send(packet, now)
    except _Stop:
        pass
    finally:
        poller.close()


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if not die_with_parent(config["owner_pid"]):
        return 1
    float_on_all_cpus()
    conditions = Conditions.from_dict(config["conditions"])
    up_spec, down_spec = conditions.directions()
    seed = config.get("seed")
    up = LinkDirection(up_spec, random.Random(seed))
    down = LinkDirection(down_spec, random.Random(None if seed is None else seed + 1))
    try:
        client_fd, server_fd, address = _prepare(config)
    except _Stop:
        return 0
    except (NamespaceError, TunError, OSError) as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        return 1
    try:
        print(json.dumps({"ready": True, "client_address": address}), flush=True)
        forward(client_fd, server_fd, up, down)
    except _Stop:  # stopped before forwarding began (the owner gave up at once)
        return 0
    finally:
        os.close(client_fd)
        os.close(server_fd)
    with contextlib.suppress(OSError):
        print(json.dumps({"up": asdict(up.stats), "down": asdict(down.stats)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
