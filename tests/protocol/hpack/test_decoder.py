import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack import (
    Decoder,
    Encoder,
    HeaderListBombError,
    HeaderListTooLargeError,
    HPACKDecodingError,
    HPACKError,
)
from h2books.protocol.hpack.integers import encode_integer
from h2books.protocol.hpack.strings import encode_raw_string, encode_string


def literal_with_indexing(name: bytes, value: bytes) -> bytes:
    return b"\x40" + encode_raw_string(name) + encode_raw_string(value)


def size_update(size: int) -> bytes:
    return encode_integer(size, 5, 0x20)


def test_accepts_memoryview_and_bytearray_backed_input() -> None:
    block = bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")
    expected = [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
    ]
    assert Decoder().decode(memoryview(block)) == expected
    assert Decoder().decode(memoryview(bytearray(b"xx" + block))[2:]) == expected


def test_empty_block_decodes_to_nothing() -> None:
    assert Decoder().decode(b"") == []


def test_names_are_returned_exactly_as_sent() -> None:
    block = literal_with_indexing(b"X-Mixed-Case", b"V") + b"\x00" + encode_raw_string(b"UPPER")
    block += encode_raw_string(b"v")
    assert Decoder().decode(block) == [(b"X-Mixed-Case", b"V"), (b"UPPER", b"v")]


def test_never_indexed_and_without_indexing_leave_the_table_alone() -> None:
    decoder = Decoder()
    block = b"\x14" + encode_string(b"/secret") + b"\x04" + encode_string(b"/plain")
    assert decoder.decode(block) == [(b":path", b"/secret"), (b":path", b"/plain")]
    assert decoder.table_entries == []


def test_literal_name_index_can_refer_to_the_dynamic_table() -> None:
    decoder = Decoder()
    decoder.decode(literal_with_indexing(b"x-a", b"1"))
    assert decoder.decode(b"\x7e" + encode_raw_string(b"2")) == [(b"x-a", b"2")]  # 6-bit 62
    assert decoder.decode(b"\x0f\x30" + encode_raw_string(b"3")) == [(b"x-a", b"3")]  # 15 + 48


def test_name_of_an_entry_evicted_by_its_own_insertion_is_kept() -> None:
    # §4.4: the new entry's name may reference the entry that adding it evicts.
    decoder = Decoder(max_table_size=40)
    decoder.decode(literal_with_indexing(b"x-a", b"1"))  # 36 octets
    assert decoder.decode(b"\x7e" + encode_raw_string(b"22")) == [(b"x-a", b"22")]
    assert decoder.table_entries == [(b"x-a", b"22")]


@pytest.mark.parametrize(("extra", "kept"), [(0, True), (1, False)])
def test_an_entry_as_big_as_the_table_fills_it_and_one_octet_more_empties_it(
    extra: int, kept: bool
) -> None:
    # §4.4: an entry larger than the table empties it, without error; one exactly its size
    # evicts everything else and stays.
    decoder = Decoder(max_table_size=100)
    decoder.decode(literal_with_indexing(b"x-a", b"1"))  # 36 octets
    value = b"v" * (100 - 32 - len(b"x-big") + extra)
    assert decoder.decode(literal_with_indexing(b"x-big", value)) == [(b"x-big", value)]
    assert decoder.table_entries == ([(b"x-big", value)] if kept else [])
    assert decoder.table_size == (100 if kept else 0)


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # indexed field 0
        b"\x80\x01a\x01b",  # indexed field 0, not a literal with a new name
        b"\xbe",  # index 62 with an empty dynamic table
        b"\xff\x00",  # index 127
        b"\xff\xff\xff\xff\xff\x0f",  # index over the integer limit
        b"\x7e\x01a",  # literal naming dynamic entry 62 that does not exist
        b"\x0f\x2f\x01a",  # same with the 4-bit prefix (15 + 47 = 62)
        b"\x1f\x2f\x01a",  # same, never indexed
        b"\x40",  # literal name missing
        b"\x40\x01a",  # value missing
        b"\x41",  # value missing after an indexed name
        b"\x41\x05abc",  # value truncated
        b"\x41\x81\x00",  # invalid Huffman value (padding not all ones)
        b"\x40\x81\x00\x00",  # invalid Huffman name
        b"\x41\x7f",  # value length prefix truncated
        b"\xff",  # index prefix truncated
        b"\x0f",  # static name past the 4-bit prefix: continuation octet missing
        b"\x0f\x13",  # etag by its static name (15 + 19 = 34): value missing
        b"\x0f\x13\x05abc",  # same, raw value truncated
        b"\x0f\x13\x85\xff\xff",  # same, Huffman value truncated
        b"\x0f\x13\x81\x00",  # same, invalid Huffman value (padding not all ones)
        b"\x82\x20",  # table size update after a field
        b"\x82\x3f\xe1\x1f",  # same, with a multi-octet size
        b"\x3f\xe2\x1f",  # size update to 4097 > 4096
    ],
)
def test_malformed_blocks_raise_decoding_error(block: bytes) -> None:
    with pytest.raises(HPACKDecodingError):
        Decoder().decode(block)


def test_huffman_string_with_eos_is_rejected() -> None:
    eos_then_padding = b"\xff\xff\xff\xff"  # 30 ones (EOS) + 2 ones
    with pytest.raises(HPACKDecodingError):
        Decoder().decode(b"\x41\x84" + eos_then_padding)


@given(st.binary(max_size=64))
def test_arbitrary_input_gives_a_list_or_an_hpack_error(data: bytes) -> None:
    try:
        result = Decoder().decode(data)
    except HPACKError:
        return
    assert isinstance(result, list)
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in result)


@given(st.lists(st.binary(max_size=24), max_size=6))
def test_arbitrary_block_sequences_on_one_decoder(blocks: list[bytes]) -> None:
    decoder = Decoder(max_header_list_size=200)
    for block in blocks:
        try:
            decoder.decode(block)
        except HeaderListTooLargeError:
            continue
        except HPACKDecodingError:
            return


def test_every_truncation_of_a_block_is_rejected_or_ends_on_a_boundary() -> None:
    fields = [
        (b":method", b"GET"),
        (b":authority", b"example.com"),
        (b"x-custom", b"v" * 200),
        (b"authorization", b"Basic Zm9vOmJhcg=="),
    ]
    block = Encoder().encode(fields)
    # The representation of a field does not depend on the fields after it.
    boundaries = [len(Encoder().encode(fields[:count])) for count in range(len(fields) + 1)]
    assert boundaries[-1] == len(block)
    for cut in range(len(block)):
        if cut in boundaries:
            assert Decoder().decode(block[:cut]) == fields[: boundaries.index(cut)]
        else:
            with pytest.raises(HPACKDecodingError):
                Decoder().decode(block[:cut])


class TestTableSizeUpdates:
    def test_update_at_the_start_resizes_and_evicts(self) -> None:
        decoder = Decoder()
        decoder.decode(literal_with_indexing(b"a", b"1") + literal_with_indexing(b"b", b"2"))
        assert decoder.decode(size_update(34) + b"\xbe") == [(b"b", b"2")]
        assert decoder.header_table_size == 34
        assert decoder.table_entries == [(b"b", b"2")]

    def test_two_updates_at_the_start_are_accepted(self) -> None:
        decoder = Decoder()
        decoder.decode(literal_with_indexing(b"a", b"1"))
        assert decoder.decode(size_update(0) + size_update(4096) + b"\x82") == [
            (b":method", b"GET")
        ]
        assert decoder.table_entries == []
        assert decoder.header_table_size == 4096

    def test_block_of_only_an_update_is_fine(self) -> None:
        decoder = Decoder()
        assert decoder.decode(size_update(100)) == []
        assert decoder.header_table_size == 100

    def test_update_after_a_field_is_rejected(self) -> None:
        with pytest.raises(HPACKDecodingError):
            Decoder().decode(b"\x82" + size_update(100))
        with pytest.raises(HPACKDecodingError):
            Decoder().decode(size_update(100) + b"\x82" + size_update(100))

    def test_update_above_the_advertised_maximum_is_rejected(self) -> None:
        decoder = Decoder()
        assert decoder.decode(size_update(4096)) == []
        with pytest.raises(HPACKDecodingError):
            Decoder().decode(size_update(4097))
        decoder = Decoder()
        decoder.max_allowed_table_size = 8192
        assert decoder.decode(size_update(8192)) == []
        with pytest.raises(HPACKDecodingError):
            decoder.decode(size_update(8193))

    def test_raising_the_allowed_size_needs_no_update(self) -> None:
        decoder = Decoder()
        decoder.max_allowed_table_size = 65536
        assert decoder.decode(b"\x82") == [(b":method", b"GET")]
        assert decoder.header_table_size == 4096

    def test_lowering_the_allowed_size_requires_an_update_first(self) -> None:
        decoder = Decoder()
        decoder.max_allowed_table_size = 1024
        assert decoder.max_allowed_table_size == 1024
        with pytest.raises(HPACKDecodingError):
            decoder.decode(b"\x82")

    def test_lowering_then_receiving_the_update_works(self) -> None:
        decoder = Decoder()
        decoder.max_allowed_table_size = 1024
        assert decoder.decode(size_update(512) + b"\x82") == [(b":method", b"GET")]
        assert decoder.decode(b"\x82") == [(b":method", b"GET")]

    def test_lowering_requires_the_update_to_fit(self) -> None:
        decoder = Decoder()
        decoder.max_allowed_table_size = 1024
        with pytest.raises(HPACKDecodingError):
            decoder.decode(size_update(2048) + b"\x82")

    def test_an_empty_block_does_not_consume_the_requirement(self) -> None:
        decoder = Decoder()
        decoder.max_allowed_table_size = 1024
        assert decoder.decode(b"") == []
        with pytest.raises(HPACKDecodingError):
            decoder.decode(b"\x82")

    def test_update_applied_before_the_ack_satisfies_a_later_lowering(self) -> None:
        # The peer may apply our SETTINGS before we see its ACK.
        decoder = Decoder()
        assert decoder.decode(size_update(1024)) == []
        decoder.max_allowed_table_size = 1024
        assert decoder.decode(b"\x82") == [(b":method", b"GET")]


class TestHeaderListSize:
    def test_limit_is_inclusive(self) -> None:
        block = literal_with_indexing(b"x", b"y" * 67)  # 1 + 67 + 32 = 100
        assert Decoder(max_header_list_size=100).decode(block) == [(b"x", b"y" * 67)]
        with pytest.raises(HeaderListTooLargeError):
            Decoder(max_header_list_size=99).decode(block)

    def test_static_and_dynamic_fields_count(self) -> None:
        decoder = Decoder(max_header_list_size=42 * 2)  # ":method: GET" is 42 octets
        assert decoder.decode(b"\x82\x82") == [(b":method", b"GET")] * 2
        with pytest.raises(HeaderListTooLargeError):
            decoder.decode(b"\x82\x82\x82")

    def test_dynamic_fields_count_their_own_size_after_evictions_and_resizes(self) -> None:
        # Each entry's size is kept beside it: evictions and a resize must not shift them.
        decoder = Decoder(max_table_size=190)
        small, big = (b"x-s", b"1"), (b"x-big", b"v" * 90)  # 36 and 127 octets
        decoder.decode(literal_with_indexing(*small) + literal_with_indexing(*big))
        decoder.decode(literal_with_indexing(*small))  # evicts the first x-s
        assert decoder.table_entries == [small, big]
        decoder.max_header_list_size = 36 + 127
        assert decoder.decode(b"\xbe\xbf") == [small, big]
        decoder.max_header_list_size = 36 + 127 - 1
        with pytest.raises(HeaderListTooLargeError):
            decoder.decode(b"\xbe\xbf")
        decoder.max_allowed_table_size = 100
        assert decoder.decode(size_update(100) + b"\xbe") == [small]  # big is evicted
        with pytest.raises(HPACKDecodingError):
            decoder.decode(b"\xbf")

    def test_indexes_past_the_first_octet_reach_the_dynamic_table(self) -> None:
        decoder = Decoder(max_table_size=65536)
        fields = [(b"x-%d" % i, b"%d" % i) for i in range(70)]  # indexes 62-131
        decoder.decode(b"".join(literal_with_indexing(*field) for field in fields))
        oldest = encode_integer(62 + 69, 7, 0x80)  # 0xFF then a continuation octet
        assert oldest[0] == 0xFF
        assert decoder.decode(oldest + b"\xfe\xbe") == [fields[0], fields[-65], fields[-1]]
        with pytest.raises(HPACKDecodingError):
            decoder.decode(encode_integer(62 + 70, 7, 0x80))

    def test_table_stays_in_sync_after_an_oversized_list(self) -> None:
        decoder = Decoder(max_header_list_size=100)
        block = literal_with_indexing(b"x-big", b"v" * 80) + literal_with_indexing(b"x-c", b"1")
        with pytest.raises(HeaderListTooLargeError):
            decoder.decode(block)
        # Both literals were inserted although only the limit was exceeded.
        assert decoder.table_entries == [(b"x-c", b"1"), (b"x-big", b"v" * 80)]
        assert decoder.decode(b"\xbe") == [(b"x-c", b"1")]

    def test_malformed_data_after_the_limit_is_still_a_decoding_error(self) -> None:
        decoder = Decoder(max_header_list_size=40)
        with pytest.raises(HPACKDecodingError):
            decoder.decode(b"\x82\x82\x80")

    def test_hpack_bomb_is_abandoned_past_twice_the_limit(self) -> None:
        decoder = Decoder()
        big_value = b"v" * 4000
        after = literal_with_indexing(b"x-after", b"1")
        block = literal_with_indexing(b"x-bomb", big_value) + b"\xbe" * 10_000 + after
        tracemalloc.start()
        try:
            with pytest.raises(HeaderListBombError):
                decoder.decode(block)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # The block itself is ~14 KB; 10,000 stored references alone would take ~80 KB more.
        assert peak < 64 * 1024
        # Decoding stopped at the 33rd reference (33 x 4038 > 2 x 65536): the literal at the
        # end of the block was never reached.
        assert decoder.table_entries == [(b"x-bomb", big_value)]

    def test_a_list_short_of_the_abort_size_keeps_the_table_in_sync(self) -> None:
        decoder = Decoder()
        block = literal_with_indexing(b"x-big", b"v" * 4000) + b"\xbe" * 31
        with pytest.raises(HeaderListTooLargeError) as raised:
            decoder.decode(block + literal_with_indexing(b"x-after", b"1"))
        assert not isinstance(raised.value, HeaderListBombError)
        assert decoder.decode(b"\xbe\xbf") == [(b"x-after", b"1"), (b"x-big", b"v" * 4000)]

    def test_abort_size_is_at_least_16_kib_past_a_small_limit(self) -> None:
        block = literal_with_indexing(b"x", b"y" * 10_000)
        with pytest.raises(HeaderListTooLargeError) as raised:
            Decoder(max_header_list_size=100).decode(block)
        assert not isinstance(raised.value, HeaderListBombError)
        with pytest.raises(HeaderListBombError):
            Decoder(max_header_list_size=100).decode(block * 2)


def test_totals_count_every_decoded_field_and_its_size() -> None:
    decoder = Decoder(count_totals=True)
    uncounting = Decoder()
    for block in (b"\x82" + literal_with_indexing(b"x-a", b"12345"), b"\xbe"):
        decoder.decode(block)  # :method GET and x-a, then x-a again
        uncounting.decode(block)
    assert uncounting.decoded_fields == uncounting.decoded_size == 0
    assert decoder.decoded_fields == 3
    assert decoder.decoded_size == (7 + 3 + 32) + 2 * (3 + 5 + 32)
    with pytest.raises(HeaderListTooLargeError):
        Decoder(max_header_list_size=10).decode(b"\x82")


def test_literals_naming_a_static_entry_past_the_prefix() -> None:
    """etag (34) and content-length (28) without indexing, as a server sends them: the name
    index takes one continuation octet; raw and Huffman-coded values, the latter decoded
    again from the shared cache on the second pass."""
    block = (
        b"\x0f\x13"
        + encode_raw_string(b'"c51349bd"')
        + b"\x0f\x0d"
        + encode_string(b"171")
        + b"\x0f\x13"
        + encode_string(b'"94c89ec1-with-a-longer-tag"')
    )
    expected = [
        (b"etag", b'"c51349bd"'),
        (b"content-length", b"171"),
        (b"etag", b'"94c89ec1-with-a-longer-tag"'),
    ]
    assert Decoder().decode(block) == expected
    assert Decoder().decode(block) == expected


def test_short_huffman_values_are_shared_unless_secret_unique_or_never_indexed() -> None:
    """What the decoder puts in the shared Huffman cache (`strings.DECODED_STRINGS`): short
    values of literals that may be indexed; not those of secret names, of etags (one per
    resource), of never-indexed literals (RFC 7541 §6.2.3) or longer than
    `CACHED_STRING_MAX_LENGTH`."""
    from h2books.protocol.hpack import strings

    def huffman(value: bytes) -> bytes:
        coded = encode_string(value)
        assert coded[0] & 0x80  # these values are shorter Huffman-coded
        return coded

    plain, secret, etag, never = b"text/plain-1", b"secret-1", b'"a1b2c3d4"', b"never-1"
    long = b"l" * 100
    block = (
        b"\x0f\x10" + huffman(plain)  # content-type (31), without indexing
        + b"\x0f\x08" + huffman(secret)  # authorization (23), without indexing
        + b"\x0f\x13" + huffman(etag)  # etag (34), without indexing
        + b"\x1f\x10" + huffman(never)  # content-type, never indexed
        + b"\x0f\x10" + huffman(long)
    )  # fmt: skip
    strings.DECODED_STRINGS.clear()
    fields = Decoder().decode(block)
    assert fields == [
        (b"content-type", plain),
        (b"authorization", secret),
        (b"etag", etag),
        (b"content-type", never),
        (b"content-type", long),
    ]
    assert sorted(strings.DECODED_STRINGS.values()) == [plain]
    assert Decoder().decode(block) == fields  # and from the cache, the same


def test_the_same_cache_rule_for_static_names_within_the_first_octet() -> None:
    """A literal whose static name index fits the first octet's prefix (decoded through
    `_STATIC_NAME_LITERALS`) shares its value or not by the same rule: not a secret's, an
    etag's or a never-indexed literal's."""
    from h2books.protocol.hpack import strings

    def huffman(value: bytes) -> bytes:
        coded = encode_string(value)
        assert coded[0] & 0x80
        return coded

    path, kind = b"/plain-2", b"text/plain-2"
    secret, cookie, etag, never = b"secret-2", b"a=secret", b'"e5f6a7b8"', b"/never-2"
    block = (
        b"\x04" + huffman(path)  # :path (4), without indexing
        + b"\x5f" + huffman(kind)  # content-type (31), with indexing
        + b"\x57" + huffman(secret)  # authorization (23), with indexing
        + b"\x60" + huffman(cookie)  # cookie (32), with indexing
        + b"\x62" + huffman(etag)  # etag (34), with indexing
        + b"\x14" + huffman(never)  # :path, never indexed
    )  # fmt: skip
    strings.DECODED_STRINGS.clear()
    decoder = Decoder()
    fields = decoder.decode(block)
    assert fields == [
        (b":path", path),
        (b"content-type", kind),
        (b"authorization", secret),
        (b"cookie", cookie),
        (b"etag", etag),
        (b":path", never),
    ]
    assert sorted(strings.DECODED_STRINGS.values()) == [path, kind]
    assert decoder.table_entries == fields[4:0:-1]
    assert Decoder().decode(block) == fields


def test_an_index_past_the_octet_with_its_continuation_missing_is_an_error() -> None:
    """`\xff` announces an index of 127 or more in a continuation octet: with none left,
    the block is truncated, even when the table holds an entry at index 127."""
    decoder = Decoder()
    decoder.decode(b"".join(b"\x40\x03n%02d\x00" % i for i in range(70)))  # 70 entries
    assert decoder.decode(b"\xff\x00") == [(b"n04", b"")]  # index 127: the 66th newest
    with pytest.raises(HPACKDecodingError):
        decoder.decode(b"\xff")
