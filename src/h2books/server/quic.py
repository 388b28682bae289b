"""The QUIC endpoint: one UDP socket, many QUIC connections, each one HTTP/3 adapter.

A datagram is routed by its destination connection id to the connection that issued
it. A datagram for no known id may open a connection only if it is a client Initial of
at least 1,200 bytes (RFC 9000 §14.1; anything smaller is dropped, so a spoofed packet
buys no reply bigger than itself), the server is not shutting down, and the connection
cap (`--max-connections`, shared with TCP) has room. Everything else that does not
parse, or names an unknown id, is dropped and counted: nothing a peer sends can raise
out of here.

Address validation (RFC 9000 §8.1): with `quic_retry` on, every new connection first
gets a Retry carrying a token sealed with a per-process key (aioquic's
`QuicRetryTokenHandler`: address, original connection id, 30 s lifetime); without it,
Retry starts by itself once `RETRY_ABOVE_HANDSHAKES` handshakes are open at once (an
Initial flood). Before validation aioquic's path check caps what we send at 3x what
the address sent (`QuicNetworkPath.can_send`), and tests/server/test_quic.py measures it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import TYPE_CHECKING, cast

from aioquic._buffer import Buffer
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicPacketType,
    encode_quic_retry,
    encode_quic_version_negotiation,
    pull_quic_header,
)
from aioquic.quic.packet_builder import QuicPacketBuilder
from aioquic.quic.retry import QuicRetryTokenHandler

from h2books.server.adapters.h3 import H3ServerProtocol

if TYPE_CHECKING:
    from h2books.server.listener import ConnectionGate
    from h2books.server.state import ServerState

log = logging.getLogger("h2books.server")

# Our connection ids are this long (aioquic's default); short headers are parsed with it.
CONNECTION_ID_LENGTH = 8
# Without --quic-retry, Retry turns itself on while this many handshakes are open.
RETRY_ABOVE_HANDSHAKES = 64


def quic_configuration(state: ServerState) -> QuicConfiguration:
    """The server's QUIC settings, from the same limits as HTTP/2 (docs/security.md)."""
    config = state.config
    limits, timeouts = config.limits, config.timeouts
    assert config.certfile is not None and config.keyfile is not None
    configuration = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        connection_id_length=CONNECTION_ID_LENGTH,
        # No packet for this long ends the connection (RFC 9000 §10.1); the same rule as
        # an idle HTTP/2 connection.
        idle_timeout=timeouts.keep_alive,
        # The peer's initial credit: per stream, and for the whole connection.
        max_stream_data=limits.initial_window_size,
        max_data=limits.connection_window_size,
    )
    configuration.load_cert_chain(config.certfile, config.keyfile)
    return configuration


class QuicEndpoint(asyncio.DatagramProtocol):
    """The UDP side of `h2books serve --http3`: datagrams in, connections, datagrams out."""

    def __init__(self, state: ServerState, gate: ConnectionGate, *, retry: bool) -> None:
        self.state = state
        self.gate = gate
        self.configuration = quic_configuration(state)
        self.always_retry = retry
        self._tokens = QuicRetryTokenHandler()
        self.transport: asyncio.DatagramTransport | None = None
        # Every connection id in use -> its connection (a connection has several).
        self._by_id: dict[bytes, H3ServerProtocol] = {}
        self.connections: set[H3ServerProtocol] = set()
        self.dropped = 0  # datagrams that opened nothing and went nowhere
        self.retries = 0  # Retry packets sent
        self.refused = 0  # Initials refused at the connection cap or during shutdown
        self.closed = False

    # -- asyncio.DatagramProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for one peer (port unreachable...): nothing to do for the others.
        log.debug("QUIC endpoint: %s", exc)

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=CONNECTION_ID_LENGTH)
        except ValueError:
            self.dropped += 1
            return
        connection = self._by_id.get(header.destination_cid)
        if connection is not None:
            connection.datagram_received(data, addr)
            return
        if len(data) < SMALLEST_MAX_DATAGRAM_SIZE or self.closed:
            self.dropped += 1
            return
        version = header.version
        if version is None or header.packet_type == QuicPacketType.VERSION_NEGOTIATION:
            self.dropped += 1  # a short header for no connection we know, or a reflection
            return
        if version not in self.configuration.supported_versions:
            self.send(
                encode_quic_version_negotiation(
                    source_cid=header.destination_cid,
                    destination_cid=header.source_cid,
                    supported_versions=self.configuration.supported_versions,
                ),
                addr,
            )
            return
        if header.packet_type != QuicPacketType.INITIAL:
            self.dropped += 1
            return
        self._open(data, addr, version, header.destination_cid, header.source_cid, header.token)

    # -- new connections ---------------------------------------------------------------------

    def _open(
        self,
        data: bytes,
        addr: NetworkAddress,
        version: int,
        destination_cid: bytes,
        source_cid: bytes,
        token: bytes,
    ) -> None:
        state = self.state
        if state.shutting_down:
            self._refuse(
                version, destination_cid, source_cid, addr, QuicErrorCode.CONNECTION_REFUSED
            )
            return
        original_cid = destination_cid
        retry_cid: bytes | None = None
        if token:
            try:
                original_cid = self._tokens.validate_token(
                    address=addr,
                    destination_cid=destination_cid,
                    token=token,
                    now=state.loop.time(),
                )
            except ValueError:
                # RFC 9000 §8.1.3: a token we cannot vouch for ends the attempt.
                self._refuse(
                    version, destination_cid, source_cid, addr, QuicErrorCode.INVALID_TOKEN
                )
                return
            retry_cid = destination_cid
        elif self.always_retry or self._handshakes() >= RETRY_ABOVE_HANDSHAKES:
            self._send_retry(version, destination_cid, source_cid, addr)
            return
        admission = self.gate.try_admit()
        if admission is None:
            self._refuse(
                version, destination_cid, source_cid, addr, QuicErrorCode.CONNECTION_REFUSED
            )
            return
        quic = QuicConnection(
            configuration=self.configuration,
            original_destination_connection_id=original_cid,
            retry_source_connection_id=retry_cid,
        )
        connection = H3ServerProtocol(state, self, quic, addr)
        admission.settle()  # counted from here on in state.connections
        self.connections.add(connection)
        self.issued(destination_cid, connection)
        self.issued(quic.host_cid, connection)
        connection.datagram_received(data, addr)

    def _handshakes(self) -> int:
        return sum(1 for connection in self.connections if not connection.handshake_done)

    def _send_retry(
        self, version: int, destination_cid: bytes, source_cid: bytes, addr: NetworkAddress
    ) -> None:
        new_cid = os.urandom(CONNECTION_ID_LENGTH)
        token = self._tokens.create_token(
            address=addr,
            original_destination_connection_id=destination_cid,
            retry_source_connection_id=new_cid,
            now=self.state.loop.time(),
        )
        self.retries += 1
        self.send(
            encode_quic_retry(
                version=version,
                source_cid=new_cid,
                destination_cid=source_cid,
                original_destination_cid=destination_cid,
                retry_token=token,
            ),
            addr,
        )

    def _refuse(
        self,
        version: int,
        destination_cid: bytes,
        source_cid: bytes,
        addr: NetworkAddress,
        error_code: int,
    ) -> None:
        """One small Initial with CONNECTION_CLOSE, so the client gives up at once instead
        of retransmitting until its own timeout; smaller than the 1,200 bytes it sent."""
        self.refused += 1
        self.gate.refused += 1
        crypto = CryptoPair()
        # Initial keys come from the client's chosen connection id (RFC 9001 §5.2).
        crypto.setup_initial(cid=destination_cid, is_client=False, version=version)
        builder = QuicPacketBuilder(
            host_cid=destination_cid,
            peer_cid=source_cid,
            is_client=False,
            max_datagram_size=SMALLEST_MAX_DATAGRAM_SIZE,
            version=version,
        )
        builder.start_packet(QuicPacketType.INITIAL, crypto)
        frame = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE, capacity=16)
        frame.push_uint_var(error_code)
        frame.push_uint_var(QuicFrameType.PADDING)  # the frame type it is about: none
        frame.push_uint_var(0)  # no reason phrase
        datagrams, _packets = builder.flush()
        for datagram in datagrams:
            self.send(datagram, addr)

    # -- for the connections -------------------------------------------------------------------

    def send(self, data: bytes, addr: NetworkAddress) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data, addr)

    def issued(self, connection_id: bytes, connection: H3ServerProtocol) -> None:
        self._by_id[connection_id] = connection
        connection.connection_ids.add(connection_id)  # so forget() needs no scan

    def retired(self, connection_id: bytes) -> None:
        owner = self._by_id.pop(connection_id, None)
        if owner is not None:
            owner.connection_ids.discard(connection_id)

    def forget(self, connection: H3ServerProtocol) -> None:
        """The connection has ended: none of its ids routes anywhere any more."""
        self.connections.discard(connection)
        for connection_id in connection.connection_ids:
            if self._by_id.get(connection_id) is connection:
                del self._by_id[connection_id]
        connection.connection_ids.clear()

    def close(self) -> None:
        """Stop taking new connections (graceful shutdown: the live ones finish first)."""
        self.closed = True

    def abort(self) -> None:
        self.closed = True
        for connection in list(self.connections):
            connection.abort()
        if self.transport is not None:
            self.transport.close()


async def open_endpoint(
    state: ServerState,
    gate: ConnectionGate,
    host: str,
    port: int,
    *,
    retry: bool,
    reuse_port: bool,
    sock: socket.socket | None = None,
) -> QuicEndpoint:
    """Listen for QUIC on UDP host:port (the HTTPS port number), or on `sock`, bound
    there already."""
    if not log.isEnabledFor(logging.DEBUG):
        # aioquic logs every peer's stream resets and duplicate packets at INFO: not
        # the server's news. --log-level debug shows them.
        logging.getLogger("quic").setLevel(logging.WARNING)
    endpoint = QuicEndpoint(state, gate, retry=retry)
    if sock is not None:
        await state.loop.create_datagram_endpoint(lambda: endpoint, sock=sock)
    else:
        await state.loop.create_datagram_endpoint(
            lambda: endpoint, local_addr=(host, port), reuse_port=reuse_port or None
        )
    return endpoint
