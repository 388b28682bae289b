import pytest
from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack import Decoder, Encoder, encoder
from h2books.protocol.hpack.integers import encode_integer


def size_update(size: int) -> bytes:
    return encode_integer(size, 5, 0x20)


def test_exact_static_match_is_one_octet() -> None:
    encoder_ = Encoder()
    assert encoder_.encode([(b":method", b"GET"), (b":status", b"200")]) == b"\x82\x88"
    assert encoder_.encode([(b"accept-encoding", b"gzip, deflate")]) == b"\x90"
    assert encoder_.table_entries == []


def test_ordinary_fields_are_indexed_and_cost_one_octet_on_reuse() -> None:
    encoder_ = Encoder()
    fields = [(b"server", b"h2books"), (b"content-type", b"application/json")]
    first = encoder_.encode(fields)
    assert first[0] == 0x40 | 54  # incremental indexing, static name "server"
    assert encoder_.table_entries == [fields[1], fields[0]]
    assert encoder_.encode(fields) == b"\xbf\xbe"  # server is now 63, content-type 62


def test_custom_name_is_sent_literally_then_reused_by_index() -> None:
    encoder_ = Encoder()
    encoder_.encode([(b"x-trace", b"abc")])
    block = encoder_.encode([(b"x-trace", b"def")])
    assert block[0] == 0x40 | 62  # literal with indexing, name from dynamic entry 62
    assert Decoder().decode(Encoder().encode([(b"x-trace", b"abc")]) + block)[1] == (
        b"x-trace",
        b"def",
    )


@pytest.mark.parametrize(
    ("name", "value", "first_octet"),
    [
        (b"authorization", b"Bearer " + b"t" * 60, 0x1F),  # static 23: 15 + continuation
        (b"proxy-authorization", b"Basic Zm9v", 0x1F),
        (b"set-cookie", b"id=1; HttpOnly; Secure; Path=/; Max-Age=3600", 0x1F),
        (b"cookie", b"id=12345", 0x1F),
    ],
)
def test_secrets_are_never_indexed(name: bytes, value: bytes, first_octet: int) -> None:
    encoder_ = Encoder()
    block = encoder_.encode([(name, value)])
    assert block[0] == first_octet
    assert encoder_.table_entries == []
    assert encoder_.encode([(name, value)]) == block
    assert Decoder().decode(block) == [(name, value)]


def test_secrets_stay_out_of_the_shared_representation_cache() -> None:
    Encoder().encode([(b"authorization", b"Bearer abc")])
    assert (b"authorization", b"Bearer abc") not in encoder._unindexed_representations


def test_long_cookies_are_indexed() -> None:
    encoder_ = Encoder()
    cookie = (b"cookie", b"session=" + b"0123456789abcdef" * 2)
    block = encoder_.encode([cookie])
    assert block[0] == 0x40 | 32
    assert encoder_.encode([cookie]) == b"\xbe"


_SECOND_SIGHTING_FIELDS = [
    (b"if-none-match", b'"abc"'),
    (b"if-modified-since", b"Mon, 24 Nov 2025 03:00:00 GMT"),
    (b"x-request-id", b"5f2b8c1e"),
    (b":path", b"/book?id=17"),
]
_RESPONSE_VOLATILE_FIELDS = [
    (b"date", b"Mon, 24 Nov 2025 03:00:00 GMT"),
    (b"content-length", b"1234"),
    (b"etag", b'"6577d818a25c943e"'),
    (b"last-modified", b"Mon, 24 Nov 2025 03:00:00 GMT"),
    (b"expires", b"0"),
    (b"age", b"10"),
    (b"location", b"/books/1"),
    (b"content-range", b"bytes 0-99/1000"),
]


@pytest.mark.parametrize("field", _RESPONSE_VOLATILE_FIELDS)
def test_a_responses_per_resource_and_per_second_fields_are_never_indexed(
    field: tuple[bytes, bytes],
) -> None:
    # The server's block cache needs tables that do not depend on which resources a
    # connection served, nor on the second: these stay literals, shared between encoders.
    encoder_ = Encoder()
    blocks = {encoder_.encode([field]) for _ in range(3)}
    assert len(blocks) == 1 and next(iter(blocks))[0] & 0xF0 == 0x00  # without indexing
    assert encoder_.table_entries == []
    assert Encoder().encode([field]) in blocks
    assert Decoder().decode(next(iter(blocks))) == [field]


@pytest.mark.parametrize("field", _SECOND_SIGHTING_FIELDS)
def test_per_resource_fields_are_indexed_on_their_second_sighting(
    field: tuple[bytes, bytes],
) -> None:
    encoder_ = Encoder()
    block = encoder_.encode([field])
    assert block[0] & 0xF0 == 0x00  # without indexing
    assert encoder_.table_entries == []
    assert Encoder().encode([field]) == block  # table-independent, so shared
    assert encoder_.encode([field])[0] & 0xC0 == 0x40  # with incremental indexing
    assert encoder_.table_entries == [field]
    assert encoder_.encode([field]) == b"\xbe"
    assert Decoder().decode(block) == [field]


def test_second_sightings_never_evict() -> None:
    encoder_ = Encoder(max_table_size=100)
    encoder_.encode([(b"server", b"h2books")])  # 6 + 7 + 32 = 45 octets
    length = (b"content-length", b"%d" % 10**12)  # 14 + 13 + 32 = 59 > 100 - 45
    encoder_.encode([length])
    block = encoder_.encode([length])
    assert block[0] & 0xF0 == 0x00
    assert encoder_.table_entries == [(b"server", b"h2books")]


def test_sightings_are_bounded() -> None:
    encoder_ = Encoder()
    paths = [(b":path", b"/p%d" % number) for number in range(encoder.SIGHTINGS_KEPT * 3)]
    for path in paths:
        encoder_.encode([path])
        assert len(encoder_._sightings) <= encoder.SIGHTINGS_KEPT
    assert encoder_.table_entries == []


@pytest.mark.parametrize(
    "field",
    [
        (b"user-agent", b"u" * 300),
        (b"cookie", b"consent=" + b"c" * 400),
        (b"referer", b"https://www.shop.example/c/space-opera?sort=rating&" + b"q" * 200),
    ],
)
def test_long_values_are_indexed_at_once(field: tuple[bytes, bytes]) -> None:
    encoder_ = Encoder()
    encoder_.encode([field])
    assert encoder_.table_entries == [field]
    assert encoder_.encode([field]) == b"\xbe"


def test_a_value_over_half_the_table_is_not_indexed_and_uses_a_dynamic_name_index() -> None:
    encoder_ = Encoder(max_table_size=400)
    encoder_.encode([(b"x-custom", b"short")])
    long_value = b"v" * (200 - 32 - len(b"x-custom") + 1)  # entry of 201 octets > 400 / 2
    block = encoder_.encode([(b"x-custom", long_value)])
    assert block[:2] == b"\x0f\x2f"  # without indexing, name index 62 = 15 + 47
    assert len(encoder_.table_entries) == 1
    fitting = b"v" * (200 - 32 - len(b"x-custom"))
    encoder_.encode([(b"x-custom", fitting)])
    assert len(encoder_.table_entries) == 2


def test_huffman_is_used_only_when_shorter() -> None:
    text_block = Encoder().encode([(b"x-a", b"hello world")])
    binary_block = Encoder().encode([(b"x-b", b"\x00\x01\x02\xfe\xff")])
    assert text_block[-9] & 0x80  # Huffman flag on the value length
    assert binary_block[-6:] == b"\x05\x00\x01\x02\xfe\xff"


def test_huffman_off_sends_raw_strings_and_skips_the_shared_cache() -> None:
    encoder_ = Encoder(huffman=False)
    assert encoder_.encode([(b"x-a", b"hello")]) == b"\x40\x03x-a\x05hello"
    field = (b"content-length", b"98765")
    assert encoder_.encode([field]) == b"\x0f\x0d\x0598765"
    assert field not in encoder._unindexed_representations


def test_entry_larger_than_half_the_table_is_not_inserted() -> None:
    encoder_ = Encoder(max_table_size=128)
    encoder_.encode([(b"x-a", b"1")])
    block = encoder_.encode([(b"server", b"s" * 40)])  # 6 + 40 + 32 > 128 / 2
    assert block[0] & 0xF0 == 0x00
    assert encoder_.table_entries == [(b"x-a", b"1")]


def test_zero_size_table_never_indexes() -> None:
    encoder_ = Encoder(max_table_size=0)
    block = encoder_.encode([(b"server", b"a"), (b"x-new", b"b")])
    assert encoder_.table_entries == []
    assert Decoder(max_table_size=0).decode(block) == [(b"server", b"a"), (b"x-new", b"b")]


def test_entry_name_is_referenced_before_its_insertion_evicts_it() -> None:
    encoder_ = Encoder(max_table_size=80)
    decoder = Decoder(max_table_size=80)
    # 36 + 37 octets, then 38 more evict x-a: 1, whose name the new entry refers to.
    for field in ((b"x-a", b"1"), (b"x-b", b"22"), (b"x-a", b"333")):
        block = encoder_.encode([field])
        assert decoder.decode(block) == [field]
    assert encoder_.table_entries == decoder.table_entries == [(b"x-a", b"333"), (b"x-b", b"22")]


def test_indexes_above_126_use_a_multi_octet_integer() -> None:
    encoder_ = Encoder()
    decoder = Decoder()
    fields = [(b"x-%d" % number, b"v") for number in range(80)]
    decoder.decode(encoder_.encode(fields))
    block = encoder_.encode(fields[:1])  # oldest entry: index 62 + 79 = 141
    assert block == b"\xff\x0e"
    assert decoder.decode(block) == fields[:1]


class TestTableSizeChanges:
    def test_shrink_is_announced_once_at_the_start_of_the_next_block(self) -> None:
        encoder_ = Encoder()
        encoder_.encode([(b"x-a", b"1")])
        encoder_.set_max_table_size(0)
        assert encoder_.table_entries == []
        assert encoder_.encode([(b":method", b"GET")]) == size_update(0) + b"\x82"
        assert encoder_.encode([(b":method", b"GET")]) == b"\x82"

    def test_unchanged_size_is_not_announced(self) -> None:
        encoder_ = Encoder()
        encoder_.set_max_table_size(4096)
        assert encoder_.encode([(b":method", b"GET")]) == b"\x82"

    def test_smallest_then_final_size_when_changed_several_times(self) -> None:
        encoder_ = Encoder()
        encoder_.encode([(b"x-a", b"1")])
        encoder_.set_max_table_size(1000)
        encoder_.set_max_table_size(100)
        encoder_.set_max_table_size(2000)
        block = encoder_.encode([(b":method", b"GET")])
        assert block == size_update(100) + size_update(2000) + b"\x82"
        assert encoder_.header_table_size == 2000

    def test_dip_and_return_to_the_same_size_is_still_announced(self) -> None:
        encoder_ = Encoder()
        encoder_.encode([(b"x-a", b"1")])
        encoder_.set_max_table_size(0)
        encoder_.set_max_table_size(4096)
        assert encoder_.table_entries == []
        assert encoder_.encode([]) == size_update(0) + size_update(4096)

    def test_only_the_final_size_when_it_is_the_smallest(self) -> None:
        encoder_ = Encoder()
        encoder_.set_max_table_size(3000)
        encoder_.set_max_table_size(1000)
        assert encoder_.encode([]) == size_update(1000)

    def test_peer_cannot_make_us_keep_a_larger_table_than_the_limit(self) -> None:
        encoder_ = Encoder()
        encoder_.set_max_table_size(2**31)
        assert encoder_.header_table_size == 4096
        assert encoder_.encode([]) == b""
        encoder_ = Encoder(table_size_limit=8192)
        encoder_.set_max_table_size(2**31)
        assert encoder_.encode([]) == size_update(8192)

    def test_initial_size_above_the_limit_is_announced(self) -> None:
        encoder_ = Encoder(max_table_size=65536)
        assert encoder_.header_table_size == 4096
        assert encoder_.encode([]) == size_update(4096)

    def test_negative_size_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError):
            Encoder().set_max_table_size(-1)

    def test_indexes_stay_correct_after_shrinking(self) -> None:
        encoder_ = Encoder()
        decoder = Decoder()
        fields = [(b"x-%d" % number, b"value") for number in range(10)]
        decoder.decode(encoder_.encode(fields))
        encoder_.set_max_table_size(200)
        block = encoder_.encode(fields)
        assert decoder.decode(block) == fields
        assert decoder.table_entries == encoder_.table_entries


def test_representation_cache_is_bounded() -> None:
    for number in range(encoder.REPRESENTATION_CACHE_MAX_ENTRIES + 50):
        Encoder().encode([(b"content-length", b"%d" % number)])
        assert len(encoder._unindexed_representations) <= encoder.REPRESENTATION_CACHE_MAX_ENTRIES


def test_huge_volatile_values_are_not_cached() -> None:
    field = (b"etag", b'"%s"' % (b"b" * 5000))
    Encoder().encode([field])
    assert field not in encoder._unindexed_representations


_names = st.sampled_from(
    [b":path", b":authority", b"server", b"cookie", b"date", b"x-a", b"x-b", b"authorization"]
)


@given(
    st.lists(
        st.lists(st.tuples(_names, st.binary(max_size=150)), max_size=8),
        max_size=8,
    ),
    st.integers(min_value=0, max_value=600),
)
def test_round_trip_through_our_decoder_keeps_tables_identical(
    blocks: list[list[tuple[bytes, bytes]]], table_size: int
) -> None:
    encoder_ = Encoder(max_table_size=table_size)
    decoder = Decoder(max_table_size=table_size)
    for fields in blocks:
        assert decoder.decode(encoder_.encode(fields)) == fields
        assert decoder.table_entries == encoder_.table_entries
        assert decoder.table_size == encoder_.table_size


def test_table_state_changes_with_an_insertion_and_is_unset_while_a_size_update_is_pending() -> (
    None
):
    encoder = Encoder()
    state = encoder.table_state()
    encoder.encode([(b"server", b"h2books")])  # inserted
    assert encoder.table_state() != state
    state = encoder.table_state()
    encoder.encode([(b"server", b"h2books"), (b"content-length", b"1234")])
    assert encoder.table_state() == state  # an indexed field and an unindexed one
    encoder.set_max_table_size(256)
    assert encoder.table_state() == -1
    encoder.encode([])
    assert encoder.table_state() >= 0
    assert Encoder(huffman=False).table_state() != Encoder().table_state()


def test_the_known_table_state_is_table_state_until_the_table_changes() -> None:
    # The response path reads `known_table_state` instead of calling `table_state()`:
    # a stale value would send a cached block encoded against another table.
    encoder = Encoder()
    assert encoder.known_table_state is None
    state = encoder.table_state()
    assert encoder.known_table_state == state >= 0
    encoder.encode([(b"server", b"h2books")])  # an insertion
    assert encoder.known_table_state is None
    state = encoder.table_state()
    encoder.encode([(b"server", b"h2books"), (b"content-length", b"1234")])  # none
    assert encoder.known_table_state == state
    encoder.set_max_table_size(256)  # a resize, and a size update pending
    assert encoder.known_table_state is None
    assert encoder.table_state() == -1
    assert encoder.known_table_state is None
    encoder.encode([])
    assert encoder.known_table_state is None
    assert encoder.table_state() == encoder.known_table_state >= 0
    encoder.set_max_table_size(256)  # no change: nothing to forget
    assert encoder.known_table_state is not None and encoder.known_table_state >= 0
    encoder.set_max_table_size(128)
    assert encoder.known_table_state is None
