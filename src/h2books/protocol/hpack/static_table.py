"""The HPACK static table (RFC 7541 Appendix A) and lookups precomputed at import time."""

from typing import Final

# Index 0 is never valid on the wire; the placeholder lets decoders index this tuple directly.
STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"", b""),
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)

STATIC_TABLE_LENGTH: Final = len(STATIC_TABLE) - 1  # 61 real entries

# Sizes as defined for the header list (RFC 7541 §4.1), precomputed for the indexed fast path.
STATIC_ENTRY_SIZES: Final[tuple[int, ...]] = tuple(
    len(name) + len(value) + 32 for name, value in STATIC_TABLE
)

# (name, value) -> index. Every pair in the table is unique.
STATIC_INDEX_BY_FIELD: Final[dict[tuple[bytes, bytes], int]] = {
    field: index for index, field in enumerate(STATIC_TABLE) if index
}

# name -> lowest index carrying that name (the lowest is as good as any and stays stable).
STATIC_INDEX_BY_NAME: Final[dict[bytes, int]] = {}
for _index in range(STATIC_TABLE_LENGTH, 0, -1):
    STATIC_INDEX_BY_NAME[STATIC_TABLE[_index][0]] = _index
del _index
