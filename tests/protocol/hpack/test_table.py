from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.hpack.table import DynamicTable, EncoderTable


def test_entries_are_newest_first_and_sized_per_section_4_1() -> None:
    table = DynamicTable(4096)
    table.add((b"a", b"1"))
    table.add((b"bb", b"22"))
    assert list(table.entries) == [(b"bb", b"22"), (b"a", b"1")]
    assert table.size == (1 + 1 + 32) + (2 + 2 + 32)
    assert len(table) == 2


def test_oldest_entries_are_evicted_to_make_room() -> None:
    table = DynamicTable(100)  # room for two 34-octet entries, not three
    table.add((b"a", b"1"))
    table.add((b"b", b"2"))
    table.add((b"c", b"3"))
    assert list(table.entries) == [(b"c", b"3"), (b"b", b"2")]
    assert table.size == 68


def test_entry_exactly_the_table_size_fits() -> None:
    table = DynamicTable(34)
    table.add((b"a", b"1"))
    table.add((b"b", b"2"))
    assert list(table.entries) == [(b"b", b"2")]


def test_entry_larger_than_the_table_empties_it() -> None:
    table = DynamicTable(100)
    table.add((b"a", b"1"))
    table.add((b"big", b"x" * 100))
    assert list(table.entries) == []
    assert table.size == 0


def test_resize_evicts_down_to_the_new_size() -> None:
    table = DynamicTable(4096)
    for name in (b"a", b"b", b"c"):
        table.add((name, b"v"))
    table.resize(70)
    assert list(table.entries) == [(b"c", b"v"), (b"b", b"v")]
    table.resize(0)
    assert list(table.entries) == []
    assert table.max_size == 0
    table.add((b"d", b"v"))
    assert list(table.entries) == []


def test_encoder_table_indexes_by_insertion_number() -> None:
    table = EncoderTable(4096)
    table.add((b"a", b"1"))
    table.add((b"b", b"2"))
    assert table.index_of(table.number_by_field[(b"b", b"2")]) == 62
    assert table.index_of(table.number_by_field[(b"a", b"1")]) == 63
    assert table.index_of(table.number_by_name[b"a"]) == 63


def test_name_lookup_points_to_the_newest_entry_and_survives_older_evictions() -> None:
    table = EncoderTable(3 * 34)
    table.add((b"a", b"1"))
    table.add((b"a", b"2"))
    assert table.index_of(table.number_by_name[b"a"]) == 62
    table.add((b"b", b"3"))
    table.add((b"c", b"4"))  # evicts ("a", "1"), but ("a", "2") still carries the name
    assert (b"a", b"1") not in table.number_by_field
    assert table.index_of(table.number_by_name[b"a"]) == 64
    table.add((b"d", b"5"))  # evicts ("a", "2"): the name goes too
    assert b"a" not in table.number_by_name


def _check_consistent(table: EncoderTable) -> None:
    entries = list(table.entries)
    assert table.size == sum(len(n) + len(v) + 32 for n, v in entries)
    assert table.size <= table.max_size
    for position, field in enumerate(entries):
        index = 62 + position
        # The lookups point at the newest occurrence of the field / name.
        if field not in entries[:position]:
            assert table.index_of(table.number_by_field[field]) == index
        if all(n != field[0] for n, _ in entries[:position]):
            assert table.index_of(table.number_by_name[field[0]]) == index
    assert set(table.number_by_field) == set(entries)
    assert set(table.number_by_name) == {name for name, _ in entries}


@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from([b"a", b"b", b"c", b"dd"]), st.sampled_from([b"", b"1", b"xyz"])
            ),
            st.integers(min_value=0, max_value=300),
        ),
        max_size=60,
    )
)
def test_encoder_lookups_stay_exact_through_any_mix_of_adds_and_resizes(
    operations: list[tuple[bytes, bytes] | int],
) -> None:
    table = EncoderTable(200)
    for operation in operations:
        if isinstance(operation, int):
            table.resize(operation)
        else:
            table.add(operation)
        _check_consistent(table)


def test_tables_with_the_same_content_share_a_state_id_and_others_do_not() -> None:
    a, b = EncoderTable(4096), EncoderTable(4096)
    for table in (a, b):
        table.add((b"server", b"h2books"))
        table.add((b"content-type", b"text/plain"))
    assert a.stable_state_id() == b.stable_state_id()
    before = a.stable_state_id()
    a.add((b"x-more", b"1"))
    assert a.state_id == -1 and a.stable_state_id() != before
    b.resize(2048)  # same entries, another size limit
    assert b.stable_state_id() != before


def test_a_state_id_is_never_given_to_other_content_even_after_the_map_is_forgotten() -> None:
    seen: dict[int, tuple[bytes, bytes]] = {}
    for n in range(600):  # more than the ids kept, so the map is cleared on the way
        table = EncoderTable(4096)
        field = (b"x-n", str(n).encode())
        table.add(field)
        state_id = table.stable_state_id()
        assert seen.setdefault(state_id, field) == field
