"""RFC 9113 §7: error codes (h2spec http2/7)."""

from __future__ import annotations

from tests.conformance.support import Conn, goaway, headers, ping, rst_stream


def test_7_goaway_with_unknown_error_code(conn: Conn) -> None:
    """h2spec 7/1: unknown error codes MUST NOT trigger special behaviour: a GOAWAY with code
    0xff ends the connection like any other GOAWAY (the server closes it)."""
    conn.send(goaway(0, 0xFF))
    conn.expect_eof()


def test_7_rst_stream_with_unknown_error_code(conn: Conn) -> None:
    """h2spec 7/2: a RST_STREAM with code 0xff closes that stream and nothing more."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        rst_stream(1, 0xFF),
        ping(b"unknown7"),
    )
    conn.expect_ping_ack(b"unknown7")


def test_7_rst_stream_with_unknown_error_code_leaves_the_connection_usable(conn: Conn) -> None:
    """§7: after that RST_STREAM, new streams are served and no error is reported back."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        rst_stream(1, 0xFFFFFFFF),
        headers(3, conn.encode(conn.request("GET", "/hello"))),
    )
    head, body = conn.expect_response(3)
    assert head[":status"] == "200" and body == b"hello world (in HTTP2)"
    assert not any(e.startswith(("RST_STREAM", "GOAWAY")) for e in conn.log), conn.log
