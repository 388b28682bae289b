"""HPACK dynamic tables (RFC 7541 §2.3.2, §4).

Entries are kept newest first, so HPACK index 62 is ``entries[0]``. The encoder's table also keeps
two dicts for O(1) lookups, mapping to *insertion numbers* (0, 1, 2, ... in insertion order) rather
than indexes, because every insertion shifts every index by one while numbers never change.
"""

import itertools

from h2books.protocol.hpack.static_table import STATIC_TABLE_LENGTH

ENTRY_OVERHEAD = 32  # RFC 7541 §4.1


class _FieldTable:
    """A FIFO of (name, value), newest first, bounded by ``max_size`` octets: what the
    decoder's and the encoder's tables share."""

    __slots__ = ("entries", "max_size", "size")

    def __init__(self, max_size: int) -> None:
        # A list, not a deque: tables hold at most ~128 entries, so insert(0) is a short
        # memmove, indexing is O(1), and an empty list costs 56 bytes against a deque's 624
        # (this is per connection, twice).
        self.entries: list[tuple[bytes, bytes]] = []
        self.size = 0
        self.max_size = max_size

    def __len__(self) -> int:
        return len(self.entries)

    def resize(self, max_size: int) -> None:
        """Apply a new maximum size, evicting as needed (§4.3)."""
        self.max_size = max_size
        self._evict_down_to(max_size)

    def _evict_down_to(self, size: int) -> None:
        raise NotImplementedError


class DynamicTable(_FieldTable):
    """The decoder's table.

    ``sizes[i]`` is the size of ``entries[i]`` (§4.1), so that an indexed field adds its
    size to the header list with one lookup.
    """

    __slots__ = ("sizes",)

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.sizes: list[int] = []

    def add(self, field: tuple[bytes, bytes]) -> None:
        """Insert ``field`` as the newest entry, evicting the oldest ones to make room (§4.4).

        The decoder's parse loop does the same inline for an entry that fits (a call less
        per indexed literal) and calls this for one that does not: a change here changes
        both."""
        entry_size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if entry_size > self.max_size:
            # Not an error: the table just ends up empty.
            self._evict_down_to(0)
            return
        self._evict_down_to(self.max_size - entry_size)
        self.entries.insert(0, field)
        self.sizes.insert(0, entry_size)
        self.size += entry_size

    def _evict_down_to(self, size: int) -> None:
        # In place, never new lists: the decoder's loop holds `entries` and `sizes` across a
        # size update that opens a block (and across `add`).
        entries = self.entries
        sizes = self.sizes
        while self.size > size:
            entries.pop()
            self.size -= sizes.pop()


class EncoderTable(_FieldTable):
    """The encoder's table, with (name, value) and name lookups in O(1).

    ``state_id`` names what the table holds (its size limit and entries, in order): any two
    tables with the same content share one id, and no other table ever gets it, so a header
    block encoded against one may be sent again by any encoder whose table has that id. It
    is -1 from a change until `stable_state_id()` names the new content.
    """

    __slots__ = ("insert_count", "number_by_field", "number_by_name", "state_id")

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.insert_count = 0
        self.number_by_field: dict[tuple[bytes, bytes], int] = {}
        self.number_by_name: dict[bytes, int] = {}
        self.state_id = -1

    def stable_state_id(self) -> int:
        state_id = self.state_id
        if state_id < 0:
            state_id = self.state_id = _state_id((self.max_size, tuple(self.entries)))
        return state_id

    def resize(self, max_size: int) -> None:
        self.state_id = -1
        super().resize(max_size)

    def index_of(self, number: int) -> int:
        """HPACK index of the entry with insertion ``number`` (the newest is 62)."""
        return STATIC_TABLE_LENGTH + self.insert_count - number

    def add(self, field: tuple[bytes, bytes]) -> None:
        self.state_id = -1
        entry_size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if entry_size > self.max_size:
            self._evict_down_to(0)
            return
        self._evict_down_to(self.max_size - entry_size)
        number = self.insert_count
        self.insert_count = number + 1
        self.entries.insert(0, field)
        self.size += entry_size
        self.number_by_field[field] = number
        self.number_by_name[field[0]] = number

    def _evict_down_to(self, size: int) -> None:
        entries = self.entries
        by_field = self.number_by_field
        by_name = self.number_by_name
        while self.size > size:
            field = entries.pop()
            number = self.insert_count - len(entries) - 1
            # A newer entry with the same key may have taken over the lookup: leave it alone.
            if by_field.get(field) == number:
                del by_field[field]
            if by_name.get(field[0]) == number:
                del by_name[field[0]]
            self.size -= len(field[0]) + len(field[1]) + ENTRY_OVERHEAD


# Table contents -> their id. Ids come from a counter and are never given out twice, so
# forgetting the map (to bound it) costs only cache misses, never a wrong block.
_state_ids: dict[tuple[int, tuple[tuple[bytes, bytes], ...]], int] = {}
_next_state_id = itertools.count()
_STATE_IDS_KEPT = 256


def _state_id(content: tuple[int, tuple[tuple[bytes, bytes], ...]]) -> int:
    state_id = _state_ids.get(content)
    if state_id is None:
        if len(_state_ids) >= _STATE_IDS_KEPT:
            _state_ids.clear()
        state_id = _state_ids[content] = next(_next_state_id)
    return state_id
