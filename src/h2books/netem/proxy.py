"""The fallback where namespaces are unavailable: a userspace TCP/UDP delay proxy.

Without root or without ``/dev/net/tun`` there is no packet-level link. This proxy
listens on the loopback, and for each connection (TCP) or peer (UDP) opens its own to
the server, and delays what it relays: half the RTT each way, and serialization at
the bandwidth, each direction on its own. UDP datagrams are also lost at the loss
rate, as packets would be. **TCP is not**: the proxy sees a byte stream, not
segments, so it cannot make TCP retransmit; `--loss` over TCP is not applied, and
`DelayProxy.describe` says so. TCP bytes beyond a direction's queue, or a receiver
that does not drain, stop the reading side (back-pressure), where a router would drop.
The proxy accepts at once, so the TCP handshake costs no round trip (the TLS handshake
and everything after it do).

Run by `DelayProxy` as ``python -m h2books.netem.proxy CONFIG_JSON`` (a process of its
own, so that its CPU is not the client's); prints one JSON line with its port when
ready, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, cast

from h2books.netem.conditions import Conditions
from h2books.netem.link import LinkDirection, LinkSpec

__all__ = ["DelayProxy", "ProxyError"]

_READ_SIZE = 65_536
_MAX_UDP_PEERS = 256  # one upstream socket each; the oldest is closed beyond this


class ProxyError(RuntimeError):
    pass


class _TimedLink:
    """A `LinkDirection` on the event loop: each packet handed to `deliver` when it is due."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        link: LinkDirection,
        deliver: Callable[[bytes], None],
    ) -> None:
        self._loop, self._link, self._deliver = loop, link, deliver
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self.pending_bytes = 0  # taken in, not yet delivered
        self.on_drained: Callable[[], None] | None = None

    def send(self, packet: bytes) -> None:
        if self._link.send(packet, self._loop.time()):
            self.pending_bytes += len(packet)
            self._arm()

    def _arm(self) -> None:
        due = self._link.next_due()
        if due is None or (self._timer is not None and self._timer_due <= due):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = self._loop.call_at(due, self._fire), due

    def _fire(self) -> None:
        self._timer = None
        for packet in self._link.take_due(self._loop.time()):
            self.pending_bytes -= len(packet)
            self._deliver(packet)
        if self.on_drained is not None:
            self.on_drained()
        self._arm()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _TcpEnd(asyncio.Protocol):
    """One end of a relayed TCP connection; what it reads goes to `outbound`, then `peer`.

    An empty chunk through the link stands for the end of the stream (a real read is
    never empty), so the FIN arrives after the bytes before it, delayed as they are.

    An end reads only while the far side can take what it reads: the peer is connected
    (the client's first bytes, its TLS ClientHello, wait in the kernel until the upstream
    connection is up, instead of reaching a transport that does not exist yet), the
    peer's transport is under its high-water mark (a reader that stops holds the writer
    back, as TCP would), and this direction's queue is not full. Memory per connection is
    thus bounded by the queue plus one read plus the transport's high-water mark.
    """

    def __init__(self, relay: _TcpConnection) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.outbound: _TimedLink | None = None
        self.peer: _TcpEnd | None = None
        self.reading = True  # what the transport was last told
        self.queue_full = False  # `outbound` over the queue limit (until half of it drains)
        self.write_blocked = False  # our transport's buffer is over its high-water mark

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.update_reading()
        if self.peer is not None:
            self.peer.update_reading()

    def update_reading(self) -> None:
        """Pause or resume reading to match whether the far side can take more."""
        transport, peer = self.transport, self.peer
        if transport is None or transport.is_closing() or peer is None:
            return
        can_read = peer.transport is not None and not peer.write_blocked and not self.queue_full
        if can_read != self.reading:
            self.reading = can_read
            if can_read:
                transport.resume_reading()
            else:
                transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        assert self.outbound is not None
        self.outbound.send(data)
        if self.outbound.pending_bytes > self.relay.queue_limit and not self.queue_full:
            self.queue_full = True  # TCP cannot drop: a full queue stops the reading instead
            self.update_reading()

    def eof_received(self) -> bool:
        assert self.outbound is not None
        self.outbound.send(b"")
        return True  # the other direction may still be sending

    def resume_if_room(self) -> None:
        assert self.outbound is not None
        if self.queue_full and self.outbound.pending_bytes <= self.relay.queue_limit // 2:
            self.queue_full = False
            self.update_reading()

    def pause_writing(self) -> None:
        self.write_blocked = True
        if self.peer is not None:
            self.peer.update_reading()

    def resume_writing(self) -> None:
        self.write_blocked = False
        if self.peer is not None:
            self.peer.update_reading()

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # not connected yet cannot happen: the other end does not read until then
        if data:
            transport.write(data)
        elif transport.can_write_eof():
            transport.write_eof()
            self.relay.half_closed()
        else:
            self.relay.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.close()


class _TcpConnection:
    """One client connection and its upstream twin, a delayed, paced stream each way."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conditions: Conditions) -> None:
        up_spec, down_spec = conditions.directions()
        self.queue_limit = up_spec.queue_bytes
        self.client, self.upstream = _TcpEnd(self), _TcpEnd(self)
        self.client.peer, self.upstream.peer = self.upstream, self.client
        self.links = []
        for reader, writer, spec in (
            (self.client, self.upstream, up_spec),
            (self.upstream, self.client, down_spec),
        ):
            stream_spec = LinkSpec(delay=spec.delay, rate=spec.rate, queue_bytes=1 << 62)
            link = _TimedLink(loop, LinkDirection(stream_spec, random.Random()), writer.write)
            link.on_drained = reader.resume_if_room
            reader.outbound = link
            self.links.append(link)
        self._eofs = 0
        self.closed = False

    def half_closed(self) -> None:
        self._eofs += 1
        if self._eofs == 2:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for link in self.links:
            link.close()
        for end in (self.client, self.upstream):
            if end.transport is not None:
                end.transport.close()


class _UdpPeer(asyncio.DatagramProtocol):
    """One client address and its own upstream socket; delay, rate and loss both ways."""

    def __init__(self, proxy: _UdpProxy, peer: tuple[str, int], seed: int | None) -> None:
        self.proxy, self.peer = proxy, peer
        self.transport: asyncio.DatagramTransport | None = None
        up_spec, down_spec = proxy.conditions.directions()
        loop = proxy.loop
        self.up = _TimedLink(loop, LinkDirection(up_spec, random.Random(seed)), self._to_server)
        rng = random.Random(None if seed is None else seed + 1)
        self.down = _TimedLink(loop, LinkDirection(down_spec, rng), self._to_client)
        self.last_used = loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last_used = self.proxy.loop.time()
        self.down.send(data)

    def _to_server(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.sendto(data)

    def _to_client(self, data: bytes) -> None:
        if self.proxy.transport is not None:
            self.proxy.transport.sendto(data, self.peer)

    def close(self) -> None:
        self.up.close()
        self.down.close()
        if self.transport is not None:
            self.transport.close()


class _UdpProxy(asyncio.DatagramProtocol):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        conditions: Conditions,
        target: tuple[str, int],
        seed: int | None,
    ) -> None:
        self.loop, self.conditions, self.target, self.seed = loop, conditions, target, seed
        self.peers: collections.OrderedDict[tuple[str, int], _UdpPeer] = collections.OrderedDict()
        self.opening: dict[tuple[str, int], list[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        peer = self.peers.get(addr)
        if peer is not None:
            peer.last_used = self.loop.time()
            peer.up.send(data)
        elif addr in self.opening:
            if len(self.opening[addr]) < 64:
                self.opening[addr].append(data)
        else:
            self.opening[addr] = [data]
            self.loop.create_task(self._open(addr))

    async def _open(self, addr: tuple[str, int]) -> None:
        while len(self.peers) >= _MAX_UDP_PEERS:  # bounded: the least recent peer goes
            _, oldest = self.peers.popitem(last=False)
            oldest.close()
        try:
            _, peer = await self.loop.create_datagram_endpoint(
                lambda: _UdpPeer(self, addr, self.seed), remote_addr=self.target
            )
        except OSError:
            self.opening.pop(addr, None)
            return
        self.peers[addr] = peer
        for data in self.opening.pop(addr, []):
            peer.up.send(data)


async def _serve(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    conditions = Conditions.from_dict(config["conditions"])
    target = (config["target_host"], int(config["target_port"]))
    server = await loop.create_server(
        lambda: _accept(loop, conditions, target), "127.0.0.1", int(config.get("port", 0))
    )
    port = server.sockets[0].getsockname()[1]
    udp_port = port
    try:  # the same port number for UDP, as HTTP/3 beside HTTPS
        udp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProxy(loop, conditions, target, config.get("seed")),
            local_addr=("127.0.0.1", port),
        )
    except OSError:
        udp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProxy(loop, conditions, target, config.get("seed")),
            local_addr=("127.0.0.1", 0),
        )
        udp_port = udp_transport.get_extra_info("sockname")[1]
    print(json.dumps({"ready": True, "port": port, "udp_port": udp_port}), flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    udp_transport.close()


def _accept(
    loop: asyncio.AbstractEventLoop, conditions: Conditions, target: tuple[str, int]
) -> _TcpEnd:
    connection = _TcpConnection(loop, conditions)

    async def connect_upstream() -> None:
        try:
            await loop.create_connection(lambda: connection.upstream, *target)
        except OSError:
            connection.close()

    loop.create_task(connect_upstream())
    return connection.client


class DelayProxy:
    """The proxy in a child process, from the caller's side: ``with DelayProxy(...) as proxy``.

    Connect to ``("127.0.0.1", proxy.port)`` (TCP) or ``proxy.udp_port`` (UDP) instead of
    the server; keep the server's name for TLS.
    """

    def __init__(
        self, conditions: Conditions, target: tuple[str, int], *, seed: int | None = None
    ) -> None:
        self.conditions, self.target, self.seed = conditions, target, seed
        self.port = 0
        self.udp_port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> DelayProxy:
        config = {
            "conditions": self.conditions.as_dict(),
            "target_host": self.target[0],
            "target_port": self.target[1],
            "seed": self.seed,
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "h2books.netem.proxy", json.dumps(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        try:
            ready = json.loads(line)
        except ValueError:
            ready = {}
        if not ready.get("ready"):
            self.close()
            raise ProxyError(f"the delay proxy did not start ({line.strip()!r})")
        self.port, self.udp_port = ready["port"], ready["udp_port"]
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def describe(self) -> str:
        text = f"{self.conditions.describe()} (delay proxy, userspace"
        if self.conditions.loss:
            return (
                text
                + f"; NO loss over TCP: the {self.conditions.loss * 100:g}% applies to UDP only)"
            )
        return text + "; TCP sees no loss)"


def main(argv: list[str]) -> int:
    config = json.loads(argv[0])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
