"""RFC 7541 (HPACK) through the real server: every decoding error is a connection error
COMPRESSION_ERROR (RFC 9113 §4.3); valid representations are decoded right (h2spec hpack/*
and generic/5, plus indexes, integers, strings and table sizes at their edges)."""

from __future__ import annotations

import pytest

from tests.conformance.support import (
    SETTINGS_HEADER_TABLE_SIZE,
    Conn,
    continuation,
    headers,
    hpack_integer,
    hpack_string,
    literal_field,
    settings_frame,
    table_size_update,
)
from tests.server.h2wire import ACK, COMPRESSION_ERROR, HEADERS, SETTINGS

STATIC_TABLE_LENGTH = 61
GET, HTTPS = b"\x82", b"\x87"  # static indexes 2 and 7


def _static_request(conn: Conn, path: bytes = b"/hello") -> bytes:
    """A request from the static table and literals only: it leaves the dynamic table alone."""
    return (
        GET
        + HTTPS
        + b"\x01"  # literal without indexing, name: static index 1 (:authority)
        + hpack_string(conn.authority.encode())
        + b"\x04"  # literal without indexing, name: static index 4 (:path)
        + hpack_string(path)
    )


def _expect_compression_error(conn: Conn, block: bytes) -> None:
    conn.send(headers(1, block))
    conn.expect_connection_error(COMPRESSION_ERROR)


# -- §2.3.3 Index Address Space, §6.1 Indexed Header Field -------------------------------


def test_2_3_3_index_beyond_both_tables(conn: Conn) -> None:
    """h2spec hpack 2.3.3/1: index 126 with an empty dynamic table is a decoding error."""
    _expect_compression_error(conn, conn.encode(conn.request()) + b"\xfe")


def test_2_3_3_first_dynamic_index_of_an_empty_table(conn: Conn) -> None:
    """§2.3.3: index 62 names the first dynamic entry: with none, a decoding error."""
    _expect_compression_error(conn, _static_request(conn) + hpack_integer(62, 7, 0x80))


def test_2_3_3_literal_with_an_invalid_name_index(conn: Conn) -> None:
    """§6.2.1: a literal whose indexed name is beyond both tables: a decoding error."""
    block = _static_request(conn) + hpack_integer(70, 6, 0x40) + hpack_string(b"value")
    _expect_compression_error(conn, block)


def test_6_1_index_zero(conn: Conn) -> None:
    """h2spec hpack 6.1/1: index 0 is not used: a decoding error."""
    _expect_compression_error(conn, conn.encode(conn.request()) + b"\x80")


def test_6_2_literal_name_index_zero_means_a_literal_name(conn: Conn) -> None:
    """§6.2.2: name index 0 means "new name": a literal name follows; this is valid."""
    conn.send(headers(1, _static_request(conn) + literal_field(b"x-new", b"name")))
    head, _ = conn.expect_response(1)
    assert head[":status"] == "200"


# -- §4.2 Maximum Table Size, §6.3 Dynamic Table Size Update -----------------------------


def test_4_2_size_update_at_the_end_of_a_block(conn: Conn) -> None:
    """h2spec hpack 4.2/1: a dynamic table size update MUST come first in a block: at the
    end it is a decoding error."""
    _expect_compression_error(conn, conn.encode(conn.request()) + table_size_update(1))


def test_4_2_size_update_between_fields(conn: Conn) -> None:
    """§4.2: one between two fields is just as misplaced."""
    _expect_compression_error(conn, GET + table_size_update(0) + _static_request(conn)[1:])


def test_6_3_size_update_above_settings_header_table_size(conn: Conn) -> None:
    """h2spec hpack 6.3/1: a size above the decoder's SETTINGS_HEADER_TABLE_SIZE is a
    decoding error."""
    limit = conn.server_settings.get(SETTINGS_HEADER_TABLE_SIZE, 4096)
    _expect_compression_error(conn, table_size_update(limit + 1) + conn.encode(conn.request()))


def test_6_3_size_update_accepted(conn: Conn) -> None:
    """h2spec generic 5/14: a size update to 0 at the start of a block is accepted."""
    conn.send(headers(1, table_size_update(0) + _static_request(conn)))
    conn.expect_headers(1)


def test_6_3_two_size_updates_accepted(conn: Conn) -> None:
    """h2spec generic 5/15: two updates (0, then 4096) at the start of a block."""
    conn.send(headers(1, b"\x20\x3f\xe1\x1f" + _static_request(conn)))
    conn.expect_headers(1)


def test_4_3_size_update_to_zero_evicts_everything(conn: Conn) -> None:
    """§4.3: shrinking the table evicts entries: after an update to 0, index 62 (the entry
    the previous request inserted) no longer exists."""
    inserted = literal_field(b"x-kept", b"for a while", representation=0x40)
    conn.send(headers(1, _static_request(conn) + inserted))
    conn.expect_response(1)
    _expect_compression_error_on(conn, 3, table_size_update(0) + _static_request(conn) + b"\xbe")


def _expect_compression_error_on(conn: Conn, stream_id: int, block: bytes) -> None:
    conn.send(headers(stream_id, block))
    conn.expect_connection_error(COMPRESSION_ERROR)


def test_4_4_entry_larger_than_the_table_empties_it(conn: Conn) -> None:
    """§4.4: inserting an entry larger than the table is not an error; it empties the
    table, so index 62 is then invalid."""
    big = literal_field(b"x-big", b"b" * 5000, representation=0x40)
    conn.send(headers(1, _static_request(conn) + big))
    conn.expect_response(1)
    _expect_compression_error_on(conn, 3, _static_request(conn) + b"\xbe")


def test_4_4_eviction_keeps_the_tables_in_step(conn: Conn) -> None:
    """§4.4: with large entries forcing evictions on every request, the server's table
    stays in step with our encoder (the hpack oracle): each request, its `:path` taken
    from the dynamic table when repeated, gets the book it asked for."""
    expected: dict[int, bytes] = {}
    stream_id = 1
    for book_id in range(1, 6):  # the reference answers, from static-table-only requests
        conn.send(headers(stream_id, _static_request(conn, f"/book?id={book_id}".encode())))
        expected[book_id] = conn.expect_response(stream_id)[1]
        stream_id += 2
    assert len(set(expected.values())) == 5
    for i in range(15):
        book_id = 1 + i % 5
        filler = (f"x-filler-{i % 3}", "f" * 1500)  # three of these overflow 4096 octets
        conn.send(
            headers(stream_id, conn.encode(conn.request("GET", f"/book?id={book_id}", filler)))
        )
        head, body = conn.expect_response(stream_id)
        assert head[":status"] == "200" and body == expected[book_id], (i, book_id, head)
        stream_id += 2


# -- §5.1 Integer Representation ---------------------------------------------------------


def test_5_1_integer_overflow(conn: Conn) -> None:
    """§5.1: an integer far too large to be an index (here beyond 2^70) is a decoding error,
    not a hang or a crash."""
    _expect_compression_error(conn, _static_request(conn) + b"\xff" + b"\xff" * 10 + b"\x7f")


def test_5_1_integer_cut_short(conn: Conn) -> None:
    """§5.1: a block that ends inside a multi-octet integer is a decoding error."""
    _expect_compression_error(conn, _static_request(conn) + b"\xff\x80")


# -- §5.2 String Literal Representation --------------------------------------------------


def test_5_2_huffman_padding_longer_than_7_bits(conn: Conn) -> None:
    """h2spec hpack 5.2/1: Huffman padding strictly longer than 7 bits: a decoding error."""
    rep = b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff"
    _expect_compression_error(conn, conn.encode(conn.request()) + rep)


def test_5_2_huffman_padded_with_zeros(conn: Conn) -> None:
    """h2spec hpack 5.2/2: padding not made of the EOS code's leading 1 bits: a decoding
    error."""
    rep = b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90"
    _expect_compression_error(conn, conn.encode(conn.request()) + rep)


def test_5_2_huffman_string_containing_eos(conn: Conn) -> None:
    """h2spec hpack 5.2/3: a Huffman string containing the EOS symbol: a decoding error."""
    rep = b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f"
    _expect_compression_error(conn, conn.encode(conn.request()) + rep)


def test_5_2_string_longer_than_the_block(conn: Conn) -> None:
    """§5.2: a string length running past the end of the field block: a decoding error."""
    _expect_compression_error(conn, _static_request(conn) + b"\x00\x05x-abc\x10ab")


def test_5_2_integer_and_string_split_across_continuation_frames(conn: Conn) -> None:
    """§5.1, §5.2, RFC 9113 §4.3: a block is decoded as a whole: a multi-octet integer and
    string literals cut across HEADERS and CONTINUATION frames decode fine."""
    head_part = _static_request(conn, b"/book?id=42")
    tail = literal_field(b"x-split", b"s" * 200)
    assert tail[9:11] == b"\x7f\x49", "the value length is a two-octet integer"
    block = head_part + tail
    cuts = [5, len(head_part) + 10, len(head_part) + 111, len(block)]  # in :authority, in
    # the integer, in the value
    pieces = [block[start:end] for start, end in zip([0, *cuts], cuts, strict=False)]
    conn.send(
        headers(1, pieces[0], end_headers=False),
        *(continuation(1, p, end_headers=False) for p in pieces[1:-1]),
        continuation(1, pieces[-1]),
    )
    head, _ = conn.expect_response(1)
    assert head[":status"] == "200"


# -- generic/5: every representation accepted --------------------------------------------

REPRESENTATIONS = {
    "indexed (user-agent:)": b"\xba",
    "incremental, indexed name, huffman": b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    "incremental, new name": b"\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    "incremental, new name x-test": b"\x40\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63",
    "incremental, new name, huffman": b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    "without indexing, literal name": b"\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    "without indexing, huffman name": b"\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    "without indexing, x-test": b"\x00\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63",
    "without indexing, x-test huffman": b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    "never indexed, literal name": b"\x10\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63",
    "never indexed, huffman name": b"\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4",
    "never indexed, x-test huffman": b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4",
    "without indexing, indexed name (user-agent)": b"\x0f\x2b" + hpack_string(b"h2spec"),
    "never indexed, indexed name (user-agent)": b"\x1f\x2b" + hpack_string(b"h2spec"),
}


@pytest.mark.parametrize("rep", REPRESENTATIONS.values(), ids=REPRESENTATIONS.keys())
def test_6_representations_are_accepted(conn: Conn, rep: bytes) -> None:
    """h2spec generic 5/1-13: each field representation decodes and the request is served."""
    conn.send(headers(1, conn.encode(conn.request()) + rep))
    conn.expect_headers(1)


def test_6_2_1_indexed_entries_are_reused_across_requests(conn: Conn) -> None:
    """§6.1, §6.2.1: entries inserted by one request serve the next ones by index."""
    for stream_id in (1, 3, 5):
        conn.send(headers(stream_id, conn.encode(conn.request("GET", "/hello", ("x-r", "1")))))
        head, body = conn.expect_response(stream_id)
        assert head[":status"] == "200" and body == b"hello world (in HTTP2)"


# -- the server's encoder ----------------------------------------------------------------


def test_4_2_smallest_table_size_in_an_interval_is_signalled(conn: Conn) -> None:
    """§4.2: when the maximum changes more than once between two blocks (here 0, then 4096),
    the encoder MUST signal the smallest value first, at the start of the next block."""
    for stream_id in (1, 3):  # let the server's encoder fill its table
        conn.send(headers(stream_id, conn.encode(conn.request("GET", "/hello"))))
        conn.expect_response(stream_id)
    conn.send(
        settings_frame((SETTINGS_HEADER_TABLE_SIZE, 0)),
        settings_frame((SETTINGS_HEADER_TABLE_SIZE, 4096)),
    )
    for _ in range(2):
        conn.wait_for(lambda f: f.type == SETTINGS and bool(f.flags & ACK), "SETTINGS ACK")
    conn.send(headers(5, conn.encode(conn.request("GET", "/hello"))))
    head = conn.wait_for(lambda f: f.type == HEADERS and f.stream_id == 5, "HEADERS")
    block: bytes = head.block  # type: ignore[attr-defined]
    assert block[:1] == table_size_update(0), block[:8].hex()
