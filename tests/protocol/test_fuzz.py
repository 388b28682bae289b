"""A bounded fuzz pass over the three parsers a peer feeds directly: the HTTP/2 frame
decoder, the HPACK decoder and the HTTP/1.1 parser (issue 6, item 10).

The only outcomes allowed are a value or the core's own error (`H2ConnectionError`,
`HPACKError`, `H1Error`), never another exception. What the per-module tests already
fuzz (arbitrary bytes into `H2Connection`, `Decoder.decode` and `H1ServerConnection`)
is not repeated here; this adds structure-aware inputs that get past the first few
octets: frame streams with sliced payloads, HPACK blocks built from valid
representations with hostile parameters, and mutated HTTP/1.1 messages.

CI runs a bounded number of examples per test. A long run (docs/security.md):

    H2BOOKS_FUZZ_EXAMPLES=200000 PYTHONPATH=src python -m pytest tests/protocol/test_fuzz.py -q
"""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from h2books.protocol.h1 import (
    H1ClientConnection,
    H1Config,
    H1Error,
    H1ServerConnection,
    serialize_head,
)
from h2books.protocol.h1 import events as h1_events
from h2books.protocol.h1.framing import body_framing
from h2books.protocol.h1.parser import (
    check_head_bytes,
    keep_alive_of,
    parse_chunk_size,
    parse_content_length,
    parse_fields,
    parse_request_line,
    parse_status_line,
    target_authority,
    validate_host,
)
from h2books.protocol.h2 import H2ConnectionError
from h2books.protocol.h2.frames import (
    parse_goaway,
    parse_priority,
    parse_settings,
    parse_u31,
    strip_padding,
)
from h2books.protocol.hpack import Decoder, HPACKError
from h2books.protocol.hpack.huffman import huffman_encode
from h2books.protocol.hpack.integers import encode_integer
from tests.protocol.h2.frame_view import Frame, parse_frames

EXAMPLES = int(os.environ.get("H2BOOKS_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- HTTP/2 frame decoder ------------------------------------------------------------


def _frame_bytes(length: int, kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    return length.to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload


# Frame headers whose declared length may or may not match the payload that follows.
raw_frames = st.builds(
    _frame_bytes,
    st.one_of(st.integers(0, 64), st.integers(0, (1 << 24) - 1)),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, (1 << 32) - 1),
    st.binary(max_size=64),
)


@FUZZ
@given(st.lists(st.one_of(raw_frames, st.binary(max_size=20)), max_size=12))
def test_parse_frames_consumes_whole_frames_only(parts: list[bytes]) -> None:
    data = b"".join(parts)
    frames, consumed = parse_frames(data)
    assert 0 <= consumed <= len(data)
    assert all(isinstance(f, Frame) and 0 <= f.stream_id < 1 << 31 for f in frames)
    # What was consumed is exactly those frames, reserved bit aside.
    rebuilt = b"".join(f.serialize() for f in frames)
    assert len(rebuilt) == consumed
    assert len(data) - consumed < 9 or consumed + 9 + int.from_bytes(
        data[consumed : consumed + 3], "big"
    ) > len(data)


payload_window = st.binary(max_size=40).flatmap(
    lambda buf: st.tuples(
        st.just(buf),
        st.integers(0, len(buf)),
        st.integers(0, len(buf)),
    ).map(lambda t: (t[0], min(t[1], t[2]), max(t[1], t[2])))
)


@FUZZ
@given(payload_window)
def test_payload_parsers_give_values_or_connection_errors(
    window: tuple[bytes, int, int],
) -> None:
    buf, start, stop = window
    try:
        content_start, content_stop = strip_padding(buf, start, stop)
    except H2ConnectionError:
        pass
    else:
        assert start < content_start <= content_stop <= stop
    size = stop - start
    if size >= 4:
        assert 0 <= parse_u31(buf, start) < 1 << 31
    if size >= 5:
        depends_on, weight, exclusive = parse_priority(buf, start)
        assert 0 <= depends_on < 1 << 31 and 0 <= weight < 256 and isinstance(exclusive, bool)
    if size % 6 == 0:
        assert len(parse_settings(buf, start, stop)) == size // 6
    if size >= 8:
        last, code, debug = parse_goaway(buf, start, stop)
        assert 0 <= last < 1 << 31 and 0 <= code < 1 << 32 and len(debug) == size - 8


# -- HPACK decoder -------------------------------------------------------------------

_integer = st.one_of(st.integers(0, 70), st.integers(0, 5000), st.integers(0, 2**40))
_strings = st.one_of(
    st.binary(max_size=40).map(lambda s: encode_integer(len(s), 7) + s),
    st.binary(max_size=40).map(
        lambda s: encode_integer(len(huffman_encode(s)), 7, 0x80) + huffman_encode(s)
    ),
    # Huffman-flagged garbage, and lengths that run past the block.
    st.binary(max_size=12).map(lambda s: encode_integer(len(s), 7, 0x80) + s),
    st.tuples(_integer, st.binary(max_size=8)).map(lambda t: encode_integer(t[0], 7) + t[1]),
)
representations = st.one_of(
    _integer.map(lambda i: encode_integer(i, 7, 0x80)),  # indexed
    st.tuples(
        st.sampled_from([(6, 0x40), (4, 0x00), (4, 0x10)]), _integer, _strings, _strings
    ).map(  # literal with a name index (0: a literal name follows)
        lambda t: (
            encode_integer(t[1] % 80, t[0][0], t[0][1]) + (t[2] if t[1] % 80 == 0 else b"") + t[3]
        )
    ),
    _integer.map(lambda size: encode_integer(size, 5, 0x20)),  # dynamic table size update
    st.binary(min_size=1, max_size=6),  # noise
)


@FUZZ
@given(
    st.lists(st.lists(representations, max_size=12).map(b"".join), min_size=1, max_size=5),
    st.sampled_from([0, 64, 256, 4096]),
    st.sampled_from([40, 300, 65536]),
)
def test_hpack_blocks_of_hostile_representations(
    blocks: list[bytes], table_size: int, list_size: int
) -> None:
    decoder = Decoder(max_table_size=4096, max_header_list_size=list_size)
    decoder.max_allowed_table_size = table_size
    for block in blocks:
        try:
            fields = decoder.decode(block)
        except HPACKError:
            continue  # too large (the stream fails) or malformed (the connection does)
        assert all(type(n) is bytes and type(v) is bytes for n, v in fields)
        assert sum(len(n) + len(v) + 32 for n, v in fields) <= list_size
        assert decoder.table_size <= decoder.header_table_size <= max(table_size, 4096)


@FUZZ
@given(st.integers(1, 40), st.integers(0, 3000), st.sampled_from([100, 4096, 65536]))
def test_hpack_reference_floods_stop_at_a_bounded_size(
    value_size: int, references: int, list_size: int
) -> None:
    """One entry referenced many times: a list, a 431-style error, or a bomb error."""
    entry = b"\x40\x01x" + encode_integer(value_size, 7) + b"v" * value_size
    decoder = Decoder(max_header_list_size=list_size)
    try:
        fields = decoder.decode(entry + b"\xbe" * references)
    except HPACKError:
        return
    assert len(fields) == references + 1


# -- HTTP/1.1 parser -----------------------------------------------------------------

_line = st.binary(max_size=60)
_ascii_line = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=60).map(
    lambda s: s.encode("latin-1")
)


@FUZZ
@given(st.one_of(_line, _ascii_line))
def test_h1_line_parsers_give_values_or_h1_errors(line: bytes) -> None:
    for parse in (parse_request_line, parse_status_line, parse_chunk_size, validate_host):
        with contextlib.suppress(H1Error):
            parse(line)  # type: ignore[operator]
    for values in ([line], [line, line], line.split(b",")):
        with contextlib.suppress(H1Error):
            parse_content_length(values)
        for name in (b"content-length", b"transfer-encoding"):
            with contextlib.suppress(H1Error):
                body_framing({name: values}, b"1.1")
            with contextlib.suppress(H1Error):
                body_framing({name: values}, b"1.1", b"GET", 200)
        assert isinstance(keep_alive_of(values, b"1.1"), bool)
    assert target_authority(b"GET", line) is None or isinstance(
        target_authority(b"GET", line), bytes
    )


@FUZZ
@given(st.lists(st.one_of(_line, _ascii_line), max_size=8))
def test_h1_head_checks_give_values_or_h1_errors(lines: list[bytes]) -> None:
    block = b"\r\n".join(lines)
    split = block.split(b"\r\n")
    try:
        check_head_bytes(block, split)
        headers, _ = parse_fields(split, 0)
    except H1Error:
        return
    assert len(headers) == len(split)
    assert all(name == name.lower() for name, _ in headers)


VALID_REQUESTS = [
    b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
]


@st.composite
def mutated_requests(draw: st.DrawFn) -> bytes:
    data = bytearray(
        b"".join(draw(st.lists(st.sampled_from(VALID_REQUESTS), min_size=1, max_size=4)))
    )
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "insert", "delete", "duplicate"]))
        if action == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif action == "insert":
            data[pos:pos] = draw(st.sampled_from([b"\r", b"\n", b" ", b":", b"\t", b"\x00", b"0"]))
        elif action == "delete":
            del data[pos]
        else:
            end = draw(st.integers(pos, min(len(data), pos + 30)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


@FUZZ
@given(mutated_requests(), st.integers(1, 64))
def test_h1_server_on_mutated_requests_only_produces_events(data: bytes, step: int) -> None:
    conn = H1ServerConnection(H1Config(max_body_size=1000, max_header_bytes=2000), 0.0)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in [*chunks, b""]:  # b"": the peer's EOF
        for event in conn.receive_data(chunk, 0.0):
            assert isinstance(event, h1_events.Event)
            if isinstance(event, h1_events.RequestReceived):
                conn.send_response(serialize_head(200, ()), b"ok")
        conn.data_to_send()
        if conn.must_close:
            break


_RESPONSE_PARTS = [
    b"HTTP/1.1 200 OK\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"\r\n",
    b"3\r\nabc\r\n",
    b"0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
]


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(_RESPONSE_PARTS)), max_size=12))
def test_h1_client_gives_events_or_its_own_error(parts: list[bytes]) -> None:
    conn = H1ClientConnection()
    conn.send_request(b"GET", b"/", [(b"host", b"a")])
    conn.send_request(b"HEAD", b"/", [(b"host", b"a")])
    conn.data_to_send()
    for part in [*parts, b""]:
        try:
            events = conn.receive_data(part, 0.0)
        except H1Error:
            return
        assert all(isinstance(e, h1_events.Event) for e in events)
