"""HPACK dynamic tables (RFC 7541 §2.3.2, §4).

Entries are kept newest first, so HPACK index 62 is ``entries[0]``. The encoder's table also keeps
two dicts for O(1) lookups, mapping to *insertion numbers* (0, 1, 2, ... in insertion order) rather
than indexes, because every insertion shifts every index by one while numbers never change.
"""

from h2books.protocol.hpack.static_table import STATIC_TABLE_LENGTH

ENTRY_OVERHEAD = 32  # RFC 7541 §4.1


class DynamicTable:
    """The decoder's table: a FIFO of (name, value) bounded by ``max_size`` octets."""

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

    def add(self, field: tuple[bytes, bytes]) -> None:
        """Insert ``field`` as the newest entry, evicting the oldest ones to make room (§4.4)."""
        entry_size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if entry_size > self.max_size:
            # Not an error: the table just ends up empty.
            self._evict_down_to(0)
            return
        self._evict_down_to(self.max_size - entry_size)
        self.entries.insert(0, field)
        self.size += entry_size

    def resize(self, max_size: int) -> None:
        """Apply a new maximum size, evicting as needed (§4.3)."""
        self.max_size = max_size
        self._evict_down_to(max_size)

    def _evict_down_to(self, size: int) -> None:
        entries = self.entries
        while self.size > size:
            name, value = entries.pop()
            self.size -= len(name) + len(value) + ENTRY_OVERHEAD


class EncoderTable(DynamicTable):
    """The encoder's table, with (name, value) and name lookups in O(1)."""

    __slots__ = ("insert_count", "number_by_field", "number_by_name")

    def __init__(self, max_size: int) -> None:
        super().__init__(max_size)
        self.insert_count = 0
        self.number_by_field: dict[tuple[bytes, bytes], int] = {}
        self.number_by_name: dict[bytes, int] = {}

    def index_of(self, number: int) -> int:
        """HPACK index of the entry with insertion ``number`` (the newest is 62)."""
        return STATIC_TABLE_LENGTH + self.insert_count - number

    def add(self, field: tuple[bytes, bytes]) -> None:
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
