"""RFC 9113 §3: starting HTTP/2 (h2spec http2/3.x, generic/1), over TLS and h2c."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.conformance.support import (
    DEFAULT_WINDOW,
    SETTINGS_INITIAL_WINDOW_SIZE,
    Conn,
    headers,
    ping,
    settings_frame,
)
from tests.conftest import ServerProcess
from tests.server.h2wire import ACK, PREFACE, PROTOCOL_ERROR, SETTINGS


@pytest.fixture(params=["tls", "h2c"])
def fresh(request: pytest.FixtureRequest, server: ServerProcess) -> Iterator[Conn]:
    """A connection with nothing sent yet: TLS with ALPN h2, or cleartext prior knowledge."""
    conn = Conn(server, tls=request.param == "tls")
    yield conn
    conn.close()


# -- §3.2 / §3.3: the two ways in ---------------------------------------------------------


def _tls_context(alpn: list[str], server: ServerProcess) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(server.ca))
    context.set_alpn_protocols(alpn)
    return context


def test_3_2_alpn_selects_h2(server: ServerProcess) -> None:
    """§3.2: HTTP/2 over TLS is negotiated with ALPN "h2"."""
    context = _tls_context(["h2", "http/1.1"], server)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"


def test_3_2_h2c_is_never_selected_over_tls(server: ServerProcess) -> None:
    """§3.2: "h2c" MUST NOT be selected by a server (it names HTTP/2 without TLS)."""
    context = _tls_context(["h2c", "http/1.1"], server)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() != "h2c"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_9_2_tls_below_1_2_is_refused(server: ServerProcess) -> None:
    """§9.2: HTTP/2 over TLS MUST use TLS 1.2 or higher: a TLS 1.0/1.1-only client is
    refused during the handshake."""
    context = _tls_context(["h2"], server)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname="localhost")
        except ssl.SSLError as exc:
            if "NO_PROTOCOLS_AVAILABLE" in str(exc):
                pytest.skip("this OpenSSL cannot offer TLS 1.0/1.1 at all")
            return  # the server refused the handshake, as it must
        except OSError:
            return
        with tls:
            pytest.fail(f"the server accepted {tls.version()}")


# -- §3.4: the connection preface --------------------------------------------------------


def test_3_4_server_preface_is_a_settings_frame(fresh: Conn) -> None:
    """h2spec 3.5/1, generic 1/1: the first frame the server sends is a SETTINGS (not ACK)."""
    fresh.send(PREFACE, settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW)))
    first = fresh.read(3.0)
    assert first is not None, "the server closed the connection"
    assert first.type == SETTINGS and not first.flags & ACK, fresh.log


def test_3_4_client_settings_are_acknowledged(fresh: Conn) -> None:
    """§3.4: the SETTINGS in the client preface MUST be acknowledged."""
    fresh.send(PREFACE, settings_frame())
    fresh.wait_for(lambda f: f.type == SETTINGS and bool(f.flags & ACK), "SETTINGS ACK")


def test_3_4_frames_right_after_the_preface_are_served(fresh: Conn) -> None:
    """§3.4: a client may send requests immediately after its preface, unacknowledged."""
    fresh.send(PREFACE, settings_frame(), headers(1, fresh.encode(fresh.request("GET", "/hello"))))
    head, body = fresh.expect_response(1)
    assert head[":status"] == "200"
    assert body == b"hello world (in HTTP2)"


def test_3_4_invalid_preface_is_a_connection_error(raw_conn: Conn) -> None:
    """h2spec 3.5/2: after ALPN chose h2, an invalid preface is a connection error
    PROTOCOL_ERROR. h2spec only asks for the close (the GOAWAY MAY be omitted); h2books sends
    the GOAWAY, and this suite holds it to that. (On the cleartext port such bytes are
    simply HTTP/1.1.)"""
    raw_conn.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
    raw_conn.expect_connection_error(PROTOCOL_ERROR)


def test_3_4_truncated_preface_magic(raw_conn: Conn) -> None:
    """§3.4: a preface that starts right and then goes wrong is just as invalid."""
    raw_conn.send(PREFACE[:10] + b"X" * 14, settings_frame())
    raw_conn.expect_connection_error(PROTOCOL_ERROR)


def test_3_4_preface_not_followed_by_settings(fresh: Conn) -> None:
    """§3.4: the preface MUST be followed by a SETTINGS frame; a PING instead makes the
    preface invalid: connection error PROTOCOL_ERROR."""
    fresh.send(PREFACE, ping())
    fresh.expect_connection_error(PROTOCOL_ERROR)


def test_3_4_http1_request_on_an_h2_tls_connection(server: ServerProcess) -> None:
    """§3.4: after ALPN chose h2, HTTP/1.1 bytes are an invalid preface: the server closes."""
    conn = Conn(server)
    try:
        conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        conn.expect_connection_error(PROTOCOL_ERROR)
    finally:
        conn.close()


# -- §9.2 Use of TLS Features ------------------------------------------------------------


def test_9_2_1_tls_compression_is_off(server: ServerProcess) -> None:
    """§9.2.1: HTTP/2 over TLS 1.2 MUST disable TLS compression."""
    context = _tls_context(["h2"], server)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.compression() is None


def test_9_2_2_prohibited_tls_1_2_cipher_suites_are_not_used_for_h2(
    server: ServerProcess,
) -> None:
    """§9.2.2: deployments over TLS 1.2 MUST NOT use the cipher suites of Appendix A (here
    the CBC ones) for HTTP/2: the server refuses the handshake or picks another protocol."""
    context = _tls_context(["h2"], server)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        try:
            tls = context.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError):
            return  # refused during the handshake
        with tls:
            assert tls.selected_alpn_protocol() != "h2", f"h2 negotiated over {tls.cipher()}"
