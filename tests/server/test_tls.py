"""The HTTPS listener's TLS context: real handshakes and records over loopback sockets."""

from __future__ import annotations

import asyncio
import ssl
import types
from collections.abc import Callable
from pathlib import Path

import pytest
import uvloop

from h2books.certs import CertPaths, ensure_certificates
from h2books.server.tls import (
    ALPN_PROTOCOLS,
    DirectSSLObject,
    TLSConfigError,
    create_server_ssl_context,
)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return ensure_certificates(tmp_path_factory.mktemp("tls"))


SSL_OBJECTS: list[object] = []  # the TLS object of each connection the echo servers made


class Echo(asyncio.Protocol):
    """Sends back what it reads (the TLS layer calls `read(size)`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        SSL_OBJECTS.append(transport.get_extra_info("ssl_object"))

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


class BufferedEcho(asyncio.BufferedProtocol):
    """The same as the server's connections read: `read(size, buffer)` into our buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray(65536)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        SSL_OBJECTS.append(transport.get_extra_info("ssl_object"))

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(bytes(self.buffer[:nbytes]))  # type: ignore[attr-defined]


async def echo_over_tls(
    certificates: CertPaths, protocol: Callable[[], asyncio.BaseProtocol], messages: list[bytes]
) -> list[bytes]:
    loop = asyncio.get_running_loop()
    context = create_server_ssl_context(certificates.cert, certificates.key)
    server = await loop.create_server(protocol, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cafile=str(certificates.ca_cert))
    client_context.set_alpn_protocols(["h2"])
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
    )
    echoed = []
    try:
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        for message in messages:
            writer.write(message)
            echoed.append(await asyncio.wait_for(reader.readexactly(len(message)), 10))
    finally:
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    return echoed


@pytest.mark.parametrize("protocol", [Echo, BufferedEcho])
@pytest.mark.parametrize("loop_name", LOOPS)
def test_records_go_through_the_c_methods_both_ways(
    certificates: CertPaths, loop_name: str, protocol: Callable[[], asyncio.BaseProtocol]
) -> None:
    # One octet, a record's worth, and several records at once (reads that fill the
    # loop's buffer, or ours, and go on in the next turn).
    messages = [b"x", bytes(range(256)) * 64, b"y" * 300_000]
    SSL_OBJECTS.clear()
    loop = LOOPS[loop_name]()
    try:
        echoed = loop.run_until_complete(echo_over_tls(certificates, protocol, messages))
    finally:
        loop.close()
    assert echoed == messages
    [ssl_object] = SSL_OBJECTS
    assert type(ssl_object) is DirectSSLObject
    for name in ("read", "write", "pending"):
        # Found on the instance, before the stdlib's Python wrappers on the class.
        assert isinstance(getattr(ssl_object, name), types.BuiltinMethodType), name
    assert ssl_object.selected_alpn_protocol() == "h2"  # the rest: the stdlib's own


def test_the_context_offers_h2_then_http1_over_tls_12_or_newer(certificates: CertPaths) -> None:
    context = create_server_ssl_context(certificates.cert, certificates.key)
    assert ALPN_PROTOCOLS == ["h2", "http/1.1"]
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION


def test_a_missing_key_is_a_one_line_error(certificates: CertPaths, tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="key file not found"):
        create_server_ssl_context(certificates.cert, tmp_path / "absent.pem")
