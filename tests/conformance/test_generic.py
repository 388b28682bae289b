"""h2spec generic: the common flows that must simply work, over TLS and over h2c (prior
knowledge on the cleartext port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conformance.support import (
    SETTINGS_ENABLE_PUSH,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    Conn,
    continuation,
    data,
    goaway,
    headers,
    ping,
    priority,
    rst_stream,
    settings_frame,
    window_update,
)
from tests.conftest import ServerProcess
from tests.server.h2wire import (
    ACK,
    CANCEL,
    COMPRESSION_ERROR,
    DATA,
    PING,
    PROTOCOL_ERROR,
    SETTINGS,
    frame,
)


@pytest.fixture(params=["tls", "h2c"])
def conn(request: pytest.FixtureRequest, server: ServerProcess) -> Iterator[Conn]:
    c = Conn(server, tls=request.param == "tls")
    c.handshake()
    yield c
    c.close()


def _ping_answered_or_closed(conn: Conn) -> None:
    """h2spec's VerifyPingFrameOrConnectionClose."""
    conn.send(ping(b"generic!"))
    conn.expect_ping_ack_or_eof(b"generic!")


# -- 2: Streams and Multiplexing ---------------------------------------------------------


def test_2_priority_on_idle_stream(conn: Conn) -> None:
    """generic 2/1: PRIORITY on an idle stream is accepted."""
    conn.send(priority(1), ping(bytes(8)))
    conn.expect_ping_ack(bytes(8))


def test_2_window_update_on_half_closed_remote_stream(conn: Conn) -> None:
    """generic 2/2: WINDOW_UPDATE on a half-closed (remote) stream is accepted: with a
    window of 0, the update lets DATA flow."""
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        headers(1, conn.encode(conn.request())),
        window_update(1, 1),
    )
    conn.expect_frame(DATA, 1)


def test_2_priority_on_half_closed_remote_stream(conn: Conn) -> None:
    """generic 2/3: PRIORITY on a half-closed (remote) stream is accepted."""
    conn.send(
        settings_frame((SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        headers(1, conn.encode(conn.request())),
        priority(1),
        window_update(1, 1),
    )
    conn.expect_frame(DATA, 1)


def test_2_rst_stream_on_half_closed_remote_stream(conn: Conn) -> None:
    """generic 2/4: RST_STREAM on a half-closed (remote) stream is accepted."""
    conn.send(headers(1, conn.encode(conn.request())), rst_stream(1, CANCEL))
    _ping_answered_or_closed(conn)


def test_2_priority_on_closed_stream(conn: Conn) -> None:
    """generic 2/5: PRIORITY on a closed stream is accepted."""
    conn.send(headers(1, conn.encode(conn.request())))
    conn.expect_stream_end(1)
    conn.send(priority(1), ping(bytes(8)))
    conn.expect_ping_ack(bytes(8))


# -- 3: Frame Definitions ----------------------------------------------------------------


def test_3_1_data_frame(conn: Conn) -> None:
    """generic 3.1/1: a POST with one DATA frame is answered."""
    conn.send(headers(1, conn.encode(conn.request("POST")), end_stream=False), data(1))
    conn.expect_headers(1)


def test_3_1_multiple_data_frames(conn: Conn) -> None:
    """generic 3.1/2: a POST with two DATA frames is answered."""
    conn.send(
        headers(1, conn.encode(conn.request("POST")), end_stream=False),
        data(1, end_stream=False),
        data(1),
    )
    conn.expect_headers(1)


def test_3_1_data_frame_with_padding(conn: Conn) -> None:
    """generic 3.1/3: a padded DATA frame is accepted."""
    conn.send(headers(1, conn.encode(conn.request("POST")), end_stream=False), data(1, padding=6))
    conn.expect_headers(1)


def test_3_2_headers_frame(conn: Conn) -> None:
    """generic 3.2/1."""
    conn.send(headers(1, conn.encode(conn.request())))
    conn.expect_headers(1)


def test_3_2_headers_frame_with_padding(conn: Conn) -> None:
    """generic 3.2/2."""
    conn.send(headers(1, conn.encode(conn.request()), pad_length=8))
    conn.expect_headers(1)


def test_3_2_headers_frame_with_priority(conn: Conn) -> None:
    """generic 3.2/3."""
    conn.send(headers(1, conn.encode(conn.request()), priority=(0, 255, False)))
    conn.expect_headers(1)


def test_3_2_headers_frame_with_padding_and_priority(conn: Conn) -> None:
    """generic 3.2/4."""
    conn.send(headers(1, conn.encode(conn.request()), pad_length=8, priority=(0, 255, True)))
    conn.expect_headers(1)


@pytest.mark.parametrize(
    ("target", "depends_on", "weight", "exclusive"),
    [(1, 0, 0, False), (1, 0, 255, False), (3, 1, 0, False), (1, 0, 0, True), (3, 0, 255, False)],
    ids=["weight-1", "weight-256", "dependency", "exclusive", "idle-higher-stream"],
)
def test_3_3_priority_frames(
    conn: Conn, target: int, depends_on: int, weight: int, exclusive: bool
) -> None:
    """generic 3.3/1-5: PRIORITY frames of every shape, then a request on stream 1."""
    conn.send(
        priority(target, depends_on=depends_on, weight=weight, exclusive=exclusive),
        headers(1, conn.encode(conn.request())),
    )
    conn.expect_headers(1)


def test_3_4_rst_stream_frame(conn: Conn) -> None:
    """generic 3.4/1: RST_STREAM on an open stream is accepted."""
    conn.send(headers(1, conn.encode(conn.request()), end_stream=False), rst_stream(1, CANCEL))
    _ping_answered_or_closed(conn)


def test_3_5_settings_frame(conn: Conn) -> None:
    """generic 3.5/1: a SETTINGS frame with every defined setting is acknowledged."""
    conn.send(
        settings_frame(
            (SETTINGS_HEADER_TABLE_SIZE, 4096),
            (SETTINGS_ENABLE_PUSH, 1),
            (SETTINGS_MAX_CONCURRENT_STREAMS, 100),
            (SETTINGS_INITIAL_WINDOW_SIZE, 65535),
            (SETTINGS_MAX_FRAME_SIZE, 16384),
            (SETTINGS_MAX_HEADER_LIST_SIZE, 100),
        )
    )
    assert conn.expect_frame(SETTINGS).flags & ACK, conn.log


def test_3_7_ping_frame(conn: Conn) -> None:
    """generic 3.7/1."""
    conn.send(ping(b"h2spec\x00\x00"))
    conn.expect_ping_ack(b"h2spec\x00\x00")


def test_3_8_goaway_frame(conn: Conn) -> None:
    """generic 3.8/1: after our GOAWAY the server closes the connection."""
    conn.send(goaway(0, 0, b"h2spec"))
    conn.expect_eof()


def test_3_9_window_update_on_the_connection(conn: Conn) -> None:
    """generic 3.9/1."""
    conn.send(window_update(0, 1), ping(bytes(8)))
    conn.expect_ping_ack(bytes(8))


def test_3_9_window_update_on_a_stream(conn: Conn) -> None:
    """generic 3.9/2."""
    conn.send(headers(1, conn.encode(conn.request())), window_update(1, 1))
    conn.expect_headers(1)


def test_3_10_continuation_frame(conn: Conn) -> None:
    """generic 3.10/1: a field block split into HEADERS and CONTINUATION."""
    block = conn.encode(conn.request())
    conn.send(headers(1, block[:5], end_headers=False), continuation(1, block[5:]))
    conn.expect_headers(1)


def test_3_10_multiple_continuation_frames(conn: Conn) -> None:
    """generic 3.10/2: a field block split into HEADERS and two CONTINUATIONs."""
    block = conn.encode(conn.request())
    conn.send(
        headers(1, block[:5], end_headers=False),
        continuation(1, block[5:10], end_headers=False),
        continuation(1, block[10:]),
    )
    conn.expect_headers(1)


# -- 4: HTTP Message Exchanges -----------------------------------------------------------


def test_4_get_request(conn: Conn) -> None:
    """generic 4/1: GET is answered with the index of all books."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/"))))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body.startswith(b"[")


def test_4_head_request(conn: Conn) -> None:
    """generic 4/2: HEAD is answered, without content."""
    conn.send(headers(1, conn.encode(conn.request("HEAD", "/"))))
    head, body = conn.expect_response(1)
    assert head[":status"] == "200" and body == b""


def test_4_post_request(conn: Conn) -> None:
    """generic 4/3: POST is answered (405 from the bookstore)."""
    conn.send(headers(1, conn.encode(conn.request("POST")), end_stream=False), data(1))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


def test_4_post_request_with_trailers(conn: Conn) -> None:
    """generic 4/4: POST with a trailer section is answered."""
    conn.send(
        headers(1, conn.encode(conn.request("POST", "/", ("trailer", "x-test"))), end_stream=False),
        data(1, end_stream=False),
        headers(1, conn.encode([("x-test", "ok")])),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


def test_4_many_concurrent_streams(conn: Conn) -> None:
    """Multiplexing: 50 requests in one write, answered each on its own stream."""
    conn.send(
        *(headers(s, conn.encode(conn.request("GET", f"/book?id={s}"))) for s in range(1, 101, 2))
    )
    for s in range(1, 101, 2):
        head, body = conn.expect_response(s)
        assert head[":status"] == "200" and b"title" in body, (s, head)


def test_4_request_body_beyond_the_initial_windows(conn: Conn) -> None:
    """§5.2, §6.9: the server replenishes its receive windows: a 3 MiB body, sent only as
    far as its windows allow, arrives whole and gets its response."""
    size = 3 << 20
    fields = conn.request("POST", "/", ("content-length", str(size)))
    conn.send(headers(1, conn.encode(fields), end_stream=False))
    conn.send_body(1, size)
    head, _ = conn.expect_response(1)
    assert head[":status"] == "405"


# -- error handling on either transport --------------------------------------------------


def test_connection_error_on_either_transport(conn: Conn) -> None:
    """RFC 9113 §5.4.1: GOAWAY PROTOCOL_ERROR, then the close, over TLS and h2c alike."""
    conn.send(frame(PING, 0, 1, bytes(8)))
    conn.expect_connection_error(PROTOCOL_ERROR)


def test_stream_error_on_either_transport(conn: Conn) -> None:
    """RFC 9113 §5.4.2: a malformed request is reset, the connection lives on."""
    conn.send(headers(1, conn.encode(conn.request("GET", "/", ("X-UPPER", "1")))))
    conn.expect_stream_error(1, PROTOCOL_ERROR)
    conn.expect_alive()


def test_compression_error_on_either_transport(conn: Conn) -> None:
    """RFC 9113 §4.3: an HPACK decoding error (index 0) is COMPRESSION_ERROR."""
    conn.send(headers(1, conn.encode(conn.request()) + b"\x80"))
    conn.expect_connection_error(COMPRESSION_ERROR)
