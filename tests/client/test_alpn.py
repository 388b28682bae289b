"""ALPN: a client offers exactly one protocol and says so when the server picks another."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from h2books.certs import CertPaths, ensure_certificates
from h2books.client import Client, TLSError
from tests.client.fakes import h1_bookstore, h2_bookstore, over_tls, serving


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertPaths:
    return ensure_certificates(tmp_path_factory.mktemp("alpn-tls"))


def server_context(certs: CertPaths, alpn: list[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def get(url: str, ca: Path, http2: bool) -> str:
    async def main() -> str:
        async with Client(url, http2=http2, cacert=ca) as client:
            return (await client.get("/book?id=1")).http_version

    return asyncio.run(main())


@pytest.mark.parametrize("alpn", [["http/1.1"], []])
def test_http2_refuses_a_server_without_h2(certs: CertPaths, alpn: list[str]) -> None:
    context = server_context(certs, alpn)
    with serving(over_tls(h1_bookstore(), context)) as fake:
        url = f"https://localhost:{fake.port}"
        with pytest.raises(TLSError, match=r"does not speak HTTP/2 over TLS.*--http1"):
            get(url, certs.ca_cert, http2=True)


@pytest.mark.parametrize("http2", [True, False])
def test_both_protocols_over_tls_to_fakes(certs: CertPaths, http2: bool) -> None:
    alpn = ["h2"] if http2 else ["http/1.1"]
    handler = h2_bookstore() if http2 else h1_bookstore()
    with serving(over_tls(handler, server_context(certs, alpn))) as fake:
        url = f"https://localhost:{fake.port}"
        assert get(url, certs.ca_cert, http2) == ("HTTP/2" if http2 else "HTTP/1.1")
