"""The HPACK decoder (RFC 7541 §3, §6)."""

from typing import Final

from h2books.protocol.hpack.errors import (
    HeaderListBombError,
    HeaderListTooLargeError,
    HPACKDecodingError,
)
from h2books.protocol.hpack.huffman import huffman_decode
from h2books.protocol.hpack.integers import decode_integer, decode_integer_continuation
from h2books.protocol.hpack.static_table import (
    STATIC_ENTRY_SIZES,
    STATIC_TABLE,
    STATIC_TABLE_LENGTH,
)
from h2books.protocol.hpack.strings import (
    CACHED_STRING_MAX_LENGTH,
    DECODED_STRINGS,
    decode_and_remember,
    decode_string,
)
from h2books.protocol.hpack.table import ENTRY_OVERHEAD, DynamicTable

# Values of these fields stay out of the shared Huffman cache: secrets should not linger there,
# nor should a cache hit let one connection time another's credentials; and an etag, one per
# resource, hardly ever repeats in one process (a crawl gets thousands): each would cost an
# insertion and push out values that do repeat (dates, lengths, types).
UNCACHED_VALUE_NAMES: Final = frozenset(
    (b"authorization", b"proxy-authorization", b"cookie", b"set-cookie", b"etag")
)

# Past the limit, decoding goes on (so that the table stays in sync and only the stream is
# refused) while the list stays below twice the limit (and at least 16 KiB past it). Beyond
# that the block is an HPACK bomb (CVE-2016-6581: one table entry referenced thousands of
# times): the rest is not decoded, which bounds the work per block to about 2 x limit / 32
# fields whatever the block holds.
ABORT_FACTOR: Final = 2
ABORT_MIN_EXTRA: Final = 16384


# An indexed field's octet holds indexes up to 126 (0x80 | index): the static entries by
# their octet (0x81-0xBD), and the first dynamic entry's (index 62, 0xBE).
_LAST_STATIC_OCTET: Final = 0x80 + STATIC_TABLE_LENGTH
_FIRST_DYNAMIC_OCTET: Final = _LAST_STATIC_OCTET + 1
_STATIC_BY_OCTET: Final = (STATIC_TABLE[0],) * 0x80 + STATIC_TABLE
_STATIC_SIZE_BY_OCTET: Final = (0,) * 0x80 + STATIC_ENTRY_SIZES
_STATIC_NAMES: Final = tuple(name for name, _ in STATIC_TABLE)


def _literal_forms() -> tuple[tuple[int, bool, bool] | None, ...]:
    """What a literal's first octet (0x00-0x80) says (§6.2): (the name index's prefix mask,
    whether the field is added to the table, whether its value may go through the shared
    Huffman cache), or None for an octet that opens no literal (a size update, index 0)."""
    forms: list[tuple[int, bool, bool] | None] = []
    for octet in range(0x81):
        if octet >= 0x40 and octet != 0x80:
            forms.append((0x3F, True, True))  # with incremental indexing (§6.2.1)
        elif octet < 0x10:
            forms.append((0x0F, False, True))  # without indexing (§6.2.2)
        elif octet < 0x20:
            forms.append((0x0F, False, False))  # never indexed (§6.2.3): kept out of caches
        else:
            forms.append(None)
    return tuple(forms)


_LITERAL_FORMS: Final = _literal_forms()

# A literal whose name is a static entry within the octet's prefix (:path, and most names
# a request carries as literals), by its first octet: (name, added to the table, value
# cacheable, the name's part of the entry size). One lookup instead of the octet's branches,
# the name lookup and the secret-name test per field; None for the other octets: index 0
# (a new name), the prefix's last value (15 or 63: a continuation octet follows) and 62 up
# (the dynamic table's).
_STATIC_NAME_LITERALS: Final = tuple(
    None
    if form is None or not 0 < octet & form[0] < min(form[0], STATIC_TABLE_LENGTH + 1)
    else (
        _STATIC_NAMES[octet & form[0]],
        form[1],
        form[2] and _STATIC_NAMES[octet & form[0]] not in UNCACHED_VALUE_NAMES,
        len(_STATIC_NAMES[octet & form[0]]) + ENTRY_OVERHEAD,
    )
    for octet, form in enumerate(_LITERAL_FORMS)
)


class Decoder:
    """Decodes header blocks into lists of (name, value) pairs; one instance per connection."""

    __slots__ = (
        "_max_allowed_table_size",
        "_size_update_required",
        "_table",
        "count_totals",
        "decoded_fields",
        "decoded_octets",
        "decoded_size",
        "max_header_list_size",
    )

    def __init__(
        self,
        max_table_size: int = 4096,
        max_header_list_size: int = 65536,
        count_totals: bool = False,
    ) -> None:
        self._table = DynamicTable(max_table_size)
        self._max_allowed_table_size = max_table_size
        self._size_update_required = False
        self.max_header_list_size = max_header_list_size
        # With count_totals, totals over every block decoded: fields, their size as RFC
        # 7541 §4.1 counts it (name + value + 32 each), and the octets of the blocks as
        # they came. What the client's wire reports split bytes by and compare compressed
        # bytes against; a server keeps none (three additions per request).
        self.count_totals = count_totals
        self.decoded_fields = 0
        self.decoded_size = 0
        self.decoded_octets = 0

    @property
    def max_allowed_table_size(self) -> int:
        """The SETTINGS_HEADER_TABLE_SIZE in force; size updates above it are errors.

        Assign it when the peer ACKs our SETTINGS. If it drops below the table's current size,
        the peer MUST open its next header block with a size update (RFC 7541 §4.2), and a block
        that starts with a field instead is a decoding error.
        """
        return self._max_allowed_table_size

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, value: int) -> None:
        self._max_allowed_table_size = value
        self._size_update_required = self._table.max_size > value

    @property
    def header_table_size(self) -> int:
        """Current maximum size of the dynamic table, as last set by the peer's encoder."""
        return self._table.max_size

    @property
    def table_entries(self) -> list[tuple[bytes, bytes]]:
        """Copy of the dynamic table, newest entry (index 62) first."""
        return list(self._table.entries)

    @property
    def table_size(self) -> int:
        """Octets the dynamic table currently holds (RFC 7541 §4.1)."""
        return self._table.size

    def decode(self, data: bytes | memoryview) -> list[tuple[bytes, bytes]]:
        """Decode one complete header block.

        Raises :class:`HPACKDecodingError` for malformed input (the connection is then unusable)
        and :class:`HeaderListTooLargeError` once the whole block has been processed, if the
        decoded list exceeded ``max_header_list_size``; in that case the table is still in sync.
        A list that runs past ``ABORT_FACTOR`` times the limit (at least ``ABORT_MIN_EXTRA``
        octets past it) raises :class:`HeaderListBombError` at once, with the rest of the block
        undecoded (the table is then out of sync).
        """
        if type(data) is not bytes:
            data = bytes(data)
        end = len(data)
        table = self._table

        # Dynamic table size updates may only open a block (§4.2). One that must (our limit
        # went down) is looked for here; one that just does is met as the first octet by
        # the loop (whose literal branch sends it to `_size_updates`): no test of the
        # block's first octet before the loop.
        pos = self._size_updates(data, end) if self._size_update_required else 0

        static_name_literals = _STATIC_NAME_LITERALS
        static_by_octet = _STATIC_BY_OCTET
        static_size_by_octet = _STATIC_SIZE_BY_OCTET
        entries = table.entries
        sizes = table.sizes
        limit = self.max_header_list_size
        list_size = 0
        headers: list[tuple[bytes, bytes]] = []
        while pos < end:
            octet = data[pos]
            pos += 1
            if octet > 0x80:  # indexed field (§6.1): the common case, kept inline
                # The index is in the octet (0x81-0xFE): the field and its size are one
                # lookup by octet for the static table, one per list for the dynamic one.
                if octet <= _LAST_STATIC_OCTET:
                    field = static_by_octet[octet]
                    list_size += static_size_by_octet[octet]
                else:
                    index = octet - _FIRST_DYNAMIC_OCTET
                    if octet == 0xFF:  # past the octet: one continuation octet inline
                        following = data[pos] if pos < end else 0x80
                        if following < 0x80:
                            index += following
                            pos += 1
                        else:
                            index, pos = decode_integer_continuation(data, pos, 0x7F)
                            index -= STATIC_TABLE_LENGTH + 1
                    try:  # (no len() per field: an index past the table raises here)
                        field = entries[index]
                    except IndexError:
                        raise HPACKDecodingError("field index beyond the dynamic table") from None
                    list_size += sizes[index]
                # Past the limit, keep decoding (the table must stay in sync) but store nothing.
                if list_size <= limit:
                    headers.append(field)
                elif list_size > _abort_size(limit):
                    raise _bomb(list_size, limit)
                continue

            # A literal (§6.2): most have a static name within the octet's prefix.
            literal = static_name_literals[octet]
            if literal is not None:
                name, indexing, cacheable, entry_size = literal
            else:
                form = _LITERAL_FORMS[octet]
                if form is None:
                    if octet == 0x80:  # index 0: tested here, off the indexed fields' path
                        raise HPACKDecodingError("index 0 is not a valid field index")
                    # Size updates opening the block: applied, then the fields. (A block
                    # that had to open with one went through `_size_updates` before the
                    # loop, which took all of them: a size update met later is misplaced.)
                    if pos == 1:
                        pos = self._size_updates(data, end)
                        continue
                    raise HPACKDecodingError("dynamic table size update after the start of a block")
                prefix_max, indexing, cacheable = form
                name_index = octet & prefix_max
                if name_index == prefix_max:
                    # One continuation octet (a static name past the 4-bit prefix: etag,
                    # content-length, date...) inline; longer ones through the function.
                    following = data[pos] if pos < end else 0x80
                    if following < 0x80:
                        name_index += following
                        pos += 1
                    else:
                        name_index, pos = decode_integer_continuation(data, pos, prefix_max)
                if not name_index:
                    name, pos = decode_string(data, pos)
                elif name_index <= STATIC_TABLE_LENGTH:
                    name = _STATIC_NAMES[name_index]
                else:
                    name_index -= STATIC_TABLE_LENGTH + 1
                    if name_index >= len(entries):
                        raise HPACKDecodingError("name index beyond the dynamic table")
                    name = entries[name_index][0]
                cacheable = cacheable and name not in UNCACHED_VALUE_NAMES
                entry_size = len(name) + ENTRY_OVERHEAD
            # A short value (length within the 7-bit prefix) inline: raw, or Huffman-coded
            # (through the shared cache unless secret); a longer one through decode_string.
            # (Each octet is read once here, as in the continuations above: a bytes
            # subscript is not specialized on 3.11, ~190 instructions.)
            string_octet = data[pos] if pos < end else 0x7F
            length = string_octet & 0x7F
            start = pos + 1
            stop = start + length
            if length == 0x7F or stop > end:
                value, pos = decode_string(data, pos, cacheable)
            elif string_octet < 0x80:
                value = data[start:stop]
                pos = stop
            elif cacheable and length <= CACHED_STRING_MAX_LENGTH:
                raw = data[start:stop]
                cached = DECODED_STRINGS.get(raw)
                value = decode_and_remember(raw) if cached is None else cached
                pos = stop
            else:
                value = huffman_decode(data[start:stop])
                pos = stop
            field = (name, value)
            entry_size += len(value)
            if indexing:
                # DynamicTable.add, inline: the hpack library (python-h2, httpx) indexes
                # every literal, :path included, so this runs for every such request.
                room = table.max_size - entry_size
                if room < 0:
                    table.add(field)  # too big for the table: it empties it
                else:
                    size = table.size
                    while size > room:  # evict the oldest (§4.4)
                        entries.pop()
                        size -= sizes.pop()
                    entries.insert(0, field)
                    sizes.insert(0, entry_size)
                    table.size = size + entry_size
            list_size += entry_size
            if list_size <= limit:
                headers.append(field)
            elif list_size > _abort_size(limit):
                raise _bomb(list_size, limit)

        if list_size > limit:
            if self.count_totals:
                self.decoded_octets += end
            raise HeaderListTooLargeError(
                f"header list of {list_size} octets exceeds the limit of {limit}"
            )
        if self.count_totals:
            self.decoded_fields += len(headers)
            self.decoded_size += list_size
            self.decoded_octets += end
        return headers

    def _size_updates(self, data: bytes, end: int) -> int:
        """The dynamic table size updates that open a block (possibly two in a row),
        applied; returns where the fields start. A block that must open with one (our
        limit went down) and does not is an error."""
        pos = 0
        while pos < end and data[pos] & 0xE0 == 0x20:
            new_size, pos = decode_integer(data, pos, 5)
            if new_size > self._max_allowed_table_size:
                raise HPACKDecodingError(
                    f"dynamic table size update to {new_size} exceeds the advertised "
                    f"{self._max_allowed_table_size}"
                )
            self._table.resize(new_size)
            self._size_update_required = False
        if self._size_update_required and pos < end:
            raise HPACKDecodingError("header block must start with a dynamic table size update")
        return pos


def _abort_size(limit: int) -> int:
    """Where a header list over `limit` becomes a bomb (looked at only past the limit)."""
    return max(limit * ABORT_FACTOR, limit + ABORT_MIN_EXTRA)


def _bomb(list_size: int, limit: int) -> HeaderListBombError:
    return HeaderListBombError(
        f"header list reached {list_size} octets against a limit of {limit}: decoding stopped"
    )
