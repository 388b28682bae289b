import hpack.table

from h2books.protocol.hpack.static_table import (
    STATIC_ENTRY_SIZES,
    STATIC_INDEX_BY_FIELD,
    STATIC_INDEX_BY_NAME,
    STATIC_TABLE,
    STATIC_TABLE_LENGTH,
)


def test_static_table_matches_rfc_7541_appendix_a_per_oracle() -> None:
    assert STATIC_TABLE_LENGTH == 61
    assert STATIC_TABLE[1:] == tuple(hpack.table.HeaderTable.STATIC_TABLE)


def test_spot_checks_against_rfc_text() -> None:
    assert STATIC_TABLE[1] == (b":authority", b"")
    assert STATIC_TABLE[2] == (b":method", b"GET")
    assert STATIC_TABLE[16] == (b"accept-encoding", b"gzip, deflate")
    assert STATIC_TABLE[61] == (b"www-authenticate", b"")


def test_sizes_follow_section_4_1() -> None:
    for index in range(1, 62):
        name, value = STATIC_TABLE[index]
        assert STATIC_ENTRY_SIZES[index] == len(name) + len(value) + 32


def test_field_lookup_is_the_inverse_of_the_table() -> None:
    assert len(STATIC_INDEX_BY_FIELD) == 61
    for field, index in STATIC_INDEX_BY_FIELD.items():
        assert STATIC_TABLE[index] == field


def test_name_lookup_gives_the_lowest_index() -> None:
    assert STATIC_INDEX_BY_NAME[b":method"] == 2
    assert STATIC_INDEX_BY_NAME[b":path"] == 4
    assert STATIC_INDEX_BY_NAME[b":status"] == 8
    assert STATIC_INDEX_BY_NAME[b"www-authenticate"] == 61
    for name, index in STATIC_INDEX_BY_NAME.items():
        assert STATIC_TABLE[index][0] == name
        assert all(STATIC_TABLE[i][0] != name for i in range(1, index))
