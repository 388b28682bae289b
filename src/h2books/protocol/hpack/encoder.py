"""The HPACK encoder (RFC 7541 §3, §6) and its indexing policy.

Policy, per field:

* exact match in the static or dynamic table -> indexed field (1 octet for the first 126 indexes);
* credentials, set-cookie and cookies under 20 octets -> literal never indexed, kept out of every
  shared cache (RFC 7541 §7.1). An attacker who can add guesses to the connection learns from
  the compressed size whether a guess matched a whole indexed value: a short cookie crumb is few
  enough guesses away, a crumb of 20 octets or more (a session id, a token) is not, and indexing
  it is what saves re-sending it with every request (the same line as nghttp2 and h2);
* a response's per-resource fields and its date (content-length, etag, last-modified, date,
  ...) -> literal without indexing: see NEVER_INDEXED_VOLATILE;
* ``:path`` and a request's validators and ids (if-none-match, x-request-id) ->
  indexed only on their second sighting (among the last SIGHTINGS_KEPT such fields), and only
  into the free first half of the table, never evicting: most paths and tags come once, and an
  entry sent once only pushes out the fields that do repeat (authority, user agent, cookies).
  Never evicting also bounds how often responses change the table, and with it the state id
  that the response path's block cache (`table_state`) is keyed on;
* a value whose entry would take more than half the table -> literal without indexing;
* everything else, whatever its length (cookies, user agents, referers) -> literal with
  incremental indexing, 1 octet from its second use on.

Representations that do not depend on the dynamic table are cached in a bounded module-level dict,
so a repeated volatile field costs one dict lookup.
"""

import sys
from collections.abc import Iterable
from typing import Final

from h2books.protocol.hpack.integers import encode_integer
from h2books.protocol.hpack.static_table import (
    STATIC_INDEX_BY_FIELD,
    STATIC_INDEX_BY_NAME,
    STATIC_TABLE_LENGTH,
)
from h2books.protocol.hpack.strings import (
    encode_raw_string,
    encode_string,
    encode_string_uncached,
)
from h2books.protocol.hpack.table import ENTRY_OVERHEAD, EncoderTable

# Our encoder never keeps a table larger than this, whatever the peer allows: the peer's
# SETTINGS_HEADER_TABLE_SIZE must not decide how much memory we spend per connection (§4.2 lets an
# encoder use less than allowed). nghttp2 uses the same default.
DEFAULT_TABLE_SIZE_LIMIT: Final = 4096

# name -> value length below which the field is sent as "never indexed".
NEVER_INDEXED_BELOW: Final[dict[bytes, int]] = {
    b"authorization": sys.maxsize,
    b"proxy-authorization": sys.maxsize,
    b"set-cookie": sys.maxsize,
    b"cookie": 20,
}

# Names whose values change with each resource, or each request: indexed on a second sighting,
# into the free first half of the table only (the other half stays for fields that repeat more).
INDEXED_ON_SECOND_SIGHTING: Final = frozenset(
    (b":path", b"if-none-match", b"if-modified-since", b"x-request-id")
)
# A response's per-resource and per-second fields are never indexed. The server answers
# each resource with one precomputed block while its encoder's table keeps the same state
# (`table_state`, scheduler.send_response): insertions that depend on which resources a
# connection happened to serve (a second sighting of an etag) or on the clock (the date)
# give every connection a table of its own and change it every second, and the block cache
# then misses on nearly every response (measured: 0% hits over 10 connections, against
# 84%). Sent as literals, whose representations are shared and cached.
NEVER_INDEXED_VOLATILE: Final = frozenset(
    (
        b"date",
        b"content-length",
        b"etag",
        b"last-modified",
        b"expires",
        b"age",
        b"location",
        b"content-range",
    )
)
SIGHTINGS_KEPT: Final = 64
# Counting sightings costs a little on every such field: a connection whose values never come
# again (a crawl: a new etag each response) stops counting once first sightings outnumber
# second ones by this much; each second sighting buys SIGHTING_REFUND more.
SIGHTING_BUDGET: Final = 128
# Below this much room in the first half, sightings are no longer counted: a validator's entry
# takes more (content-length: 32 + 14 + its digits).
SMALL_ENTRY_SIZE: Final = 64
SIGHTING_REFUND: Final = 8
# A value is indexed only if its entry takes at most this share of the table (1/2): one long
# value must not flush everything else.
LARGEST_ENTRY_DIVISOR: Final = 2

# Bounds of the shared cache of table-independent representations.
REPRESENTATION_CACHE_MAX_ENTRIES: Final = 4096
CACHED_REPRESENTATION_MAX_LENGTH: Final = 256

# Indexed field representations up to index 254 (two octets from 127 on): a full default-size
# table holds at most 4096 / 32 entries after the 61 static ones.
_INDEXED: Final[tuple[bytes, ...]] = tuple(encode_integer(index, 7, 0x80) for index in range(255))
_INDEXED_COUNT: Final = len(_INDEXED)
_STATIC_INDEXED: Final[dict[tuple[bytes, bytes], bytes]] = {
    field: _INDEXED[index] for field, index in STATIC_INDEX_BY_FIELD.items()
}
# The first octets of "literal without indexing" with a static name, by its index.
_WITHOUT_INDEXING_NAMED: Final[tuple[bytes, ...]] = tuple(
    encode_integer(index, 4) for index in range(STATIC_TABLE_LENGTH + 1)
)
_unindexed_representations: dict[tuple[bytes, bytes], bytes] = {}
_NOTHING_CACHED: Final[dict[tuple[bytes, bytes], bytes]] = {}


def _size_update(size: int) -> bytes:
    return encode_integer(size, 5, 0x20)


class Encoder:
    """Encodes header lists into header blocks; one instance per connection.

    ``huffman=False`` sends every string raw (for tests and debugging); it also bypasses the
    shared representation cache, whose entries are Huffman-coded.
    """

    __slots__ = (
        "_cache",
        "_encode_string",
        "_encode_uncached",
        "_huffman",
        "_sighting_budget",
        "_sightings",
        "_smallest_pending_size",
        "_table",
        "_table_size_limit",
        "known_table_state",
    )

    def __init__(
        self,
        max_table_size: int = 4096,
        *,
        table_size_limit: int = DEFAULT_TABLE_SIZE_LIMIT,
        huffman: bool = True,
    ) -> None:
        self._table_size_limit = table_size_limit
        effective_size = min(max_table_size, table_size_limit)
        self._table = EncoderTable(effective_size)
        # The peer's decoder starts at max_table_size; using less must be announced.
        self._smallest_pending_size: int | None = (
            effective_size if effective_size != max_table_size else None
        )
        self._huffman = huffman
        # `table_state()`'s answer, kept until something changes the table (an insertion,
        # a resize); None while unknown (an `is None` test costs the response path ~60
        # instructions less than `< 0`). The response path reads this slot instead of
        # calling `table_state()` per response (a call, ~400 instructions).
        self.known_table_state: int | None = None
        self._cache = _unindexed_representations if huffman else _NOTHING_CACHED
        # Values of second-sighting fields sent once and not indexed yet (a dict: 64 octets
        # empty). Keyed by value alone, whose hash bytes cache: two names sharing a value
        # only make one of them indexed a sighting early.
        self._sightings: dict[bytes, None] = {}
        self._sighting_budget = SIGHTING_BUDGET
        self._encode_string = encode_string if huffman else encode_raw_string
        # Strings kept out of the shared string cache: secrets, and values whose whole
        # representation is cached instead.
        self._encode_uncached = encode_string_uncached if huffman else encode_raw_string

    @property
    def header_table_size(self) -> int:
        """Maximum size of the dynamic table we currently use."""
        return self._table.max_size

    @property
    def table_entries(self) -> list[tuple[bytes, bytes]]:
        """Copy of the dynamic table, newest entry (index 62) first."""
        return list(self._table.entries)

    @property
    def table_size(self) -> int:
        """Octets the dynamic table currently holds (RFC 7541 §4.1)."""
        return self._table.size

    def set_max_table_size(self, size: int) -> None:
        """Apply the peer's new SETTINGS_HEADER_TABLE_SIZE.

        Evicts at once, and announces the change at the start of the next block: the smallest
        size reached meanwhile first, then the final one (RFC 7541 §4.2).
        """
        if size < 0:
            raise ValueError(f"table size must not be negative, got {size}")
        size = min(size, self._table_size_limit)
        pending = self._smallest_pending_size
        if pending is None:
            if size == self._table.max_size:
                return
            self._smallest_pending_size = size
        elif size < pending:
            self._smallest_pending_size = size
        self.known_table_state = None
        self._table.resize(size)

    def table_state(self) -> int:
        """What the encoding of a header list depends on, as an id (`EncoderTable.state_id`);
        -1 when the next block must announce a table size update, and so differs anyway.

        A block that left the state as it found it (it inserted nothing) is the exact
        encoding of its list for as long as the state stays the same, on any encoder with
        the same `huffman` setting: `encode` need not run again.
        """
        if self._smallest_pending_size is not None:
            return -1
        state_id = self._table.state_id
        if state_id < 0:
            state_id = self._table.stable_state_id()
        # A raw block differs from a Huffman-coded one.
        state = self.known_table_state = state_id * 2 + self._huffman
        return state

    def encode(self, fields: Iterable[tuple[bytes, bytes]]) -> bytes:
        """Encode one header list (names as given: the caller lowercases) into a header block."""
        table = self._table
        parts: list[bytes] = []
        if self._smallest_pending_size is not None:
            if self._smallest_pending_size < table.max_size:
                parts.append(_size_update(self._smallest_pending_size))
            parts.append(_size_update(table.max_size))
            self._smallest_pending_size = None

        static_indexed = _STATIC_INDEXED
        number_by_field = table.number_by_field
        shared = self._cache
        sightings = self._sightings
        # Second sightings are indexed only into the table's first half: once it is filled
        # (checked once per block), or the budget spent, they need no bookkeeping at all.
        counting = (
            self._sighting_budget > 0 and (table.max_size >> 1) - table.size >= SMALL_ENTRY_SIZE
        )
        first_sightings = 0
        if len(sightings) >= SIGHTINGS_KEPT:
            # Bounded per block, not per field: a block adds at most its own fields.
            sightings.clear()
        # HPACK index = newest_index - insertion number (EncoderTable.index_of, inlined);
        # only an insertion by _encode_literal moves it.
        newest_index = STATIC_TABLE_LENGTH + table.insert_count
        for field in fields:
            representation = static_indexed.get(field)
            if representation is None:
                number = number_by_field.get(field)
                if number is None:
                    # Only second-sighting fields have a shared representation: on a first
                    # sighting, it is the answer.
                    representation = shared.get(field)
                    if representation is None or (counting and field[1] in sightings):
                        representation = self._encode_literal(field)
                        newest_index = STATIC_TABLE_LENGTH + table.insert_count
                    elif counting:
                        sightings[field[1]] = None
                        first_sightings += 1
                else:
                    index = newest_index - number
                    representation = (
                        _INDEXED[index]
                        if index < _INDEXED_COUNT
                        else encode_integer(index, 7, 0x80)
                    )
            parts.append(representation)
        if first_sightings:
            self._sighting_budget -= first_sightings
        return b"".join(parts)

    def _encode_literal(self, field: tuple[bytes, bytes]) -> bytes:
        name, value = field
        table = self._table
        entry_size = len(name) + len(value) + ENTRY_OVERHEAD
        if name in INDEXED_ON_SECOND_SIGHTING or name in NEVER_INDEXED_VOLATILE:
            # First here: most literals of the response path are these.
            if (
                name in NEVER_INDEXED_VOLATILE
                or self._sighting_budget <= 0
                or entry_size > (table.max_size >> 1) - table.size
                or not self._seen_before(field)
            ):
                # With a static name (or none): the same on every connection, so shared.
                representation = self._literal_without_indexing(
                    STATIC_INDEX_BY_NAME.get(name, 0), name, value
                )
                if self._huffman and len(representation) <= CACHED_REPRESENTATION_MAX_LENGTH:
                    if len(_unindexed_representations) >= REPRESENTATION_CACHE_MAX_ENTRIES:
                        _unindexed_representations.clear()
                    _unindexed_representations[field] = representation
                return representation
        elif len(value) < NEVER_INDEXED_BELOW.get(name, 0):
            # Secrets bypass the shared caches.
            name_index = self._name_index(name)
            head = (
                encode_integer(name_index, 4, 0x10)
                if name_index
                else b"\x10" + self._encode_uncached(name)
            )
            return head + self._encode_uncached(value)

        encode_str = self._encode_string
        name_index = self._name_index(name)
        if entry_size * LARGEST_ENTRY_DIVISOR > table.max_size:
            if name_index:
                return encode_integer(name_index, 4) + encode_str(value)
            return b"\x00" + encode_str(name) + encode_str(value)
        # The name index must be taken before inserting, which may evict that very entry.
        head = encode_integer(name_index, 6, 0x40) if name_index else b"\x40" + encode_str(name)
        self.known_table_state = None
        table.add(field)
        return head + encode_str(value)

    def _seen_before(self, field: tuple[bytes, bytes]) -> bool:
        """False the first time a field comes (and remembers it), True the second."""
        sightings = self._sightings
        if sightings.pop(field[1], 0) is None:
            self._sighting_budget = min(self._sighting_budget + SIGHTING_REFUND, SIGHTING_BUDGET)
            return True
        sightings[field[1]] = None
        self._sighting_budget -= 1
        return False

    def _name_index(self, name: bytes) -> int:
        """Static or dynamic index of an entry named ``name``, or 0 if there is none."""
        static_index = STATIC_INDEX_BY_NAME.get(name)
        if static_index is not None:
            return static_index
        number = self._table.number_by_name.get(name)
        return 0 if number is None else self._table.index_of(number)

    def _literal_without_indexing(self, static_name_index: int, name: bytes, value: bytes) -> bytes:
        # The caller keeps the representation in the shared cache (a Huffman-coded one up
        # to CACHED_REPRESENTATION_MAX_LENGTH): the value's own entry in the string cache
        # would only hold it a second time. Longer or raw ones are encoded again each time.
        encode_str = self._encode_uncached
        if static_name_index:
            return _WITHOUT_INDEXING_NAMED[static_name_index] + encode_str(value)
        return b"\x00" + self._encode_string(name) + encode_str(value)
