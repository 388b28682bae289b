"""Import the 2016 post's ``books.json`` (or any file of that shape) into the catalogue.

The file is a JSON object of id -> book, each book an object with string fields
``title``, ``author``, ``url`` and ``score`` and an optional string ``vote_count``.
Each book is stored as ``json.dumps(book)`` with the file's own key order, which is
what the post's server sent, so the import is served byte for byte as it was then.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from h2books.app.store import MAX_ID_LENGTH, CatalogError, is_valid_book_id, open_catalog

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "MAX_BOOKS",
    "CatalogImportError",
    "import_catalog",
    "parse_catalog",
    "read_source",
]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_BOOKS = 1_000_000

REQUIRED_FIELDS = ("title", "author", "url", "score")
OPTIONAL_FIELDS = ("vote_count",)

_READ_CHUNK = 1024 * 1024


class CatalogImportError(CatalogError):
    """The source cannot be read or is not a catalogue; the message is one line."""


def import_catalog(
    data_dir: Path,
    source: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> int:
    """Replace the catalogue in ``data_dir`` with ``source`` (a path or http(s) URL).

    Returns the number of books imported. Nothing is changed unless the whole source
    reads and validates.
    """
    books = parse_catalog(read_source(source, timeout=timeout, max_bytes=max_bytes))
    with open_catalog(Path(data_dir)) as store:
        return store.replace_all(books, source=source)


def read_source(
    source: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """The raw bytes of a local file or an http(s) URL, at most ``max_bytes`` of them."""
    if source.startswith(("http://", "https://")):
        return _fetch(source, timeout, max_bytes)
    path = Path(source).expanduser()
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise CatalogImportError(f"catalogue source {source} does not exist") from exc
    except IsADirectoryError as exc:
        raise CatalogImportError(f"catalogue source {source} is a directory") from exc
    except OSError as exc:
        raise CatalogImportError(f"cannot read {source}: {_one_line(exc)}") from exc
    if len(data) > max_bytes:
        raise CatalogImportError(f"catalogue source {source} is larger than {max_bytes} bytes")
    return data


def parse_catalog(raw: bytes | str) -> dict[str, dict[str, Any]]:
    """Decode and validate a catalogue, keeping the order of books and of their fields."""
    try:
        document = json.loads(
            raw, object_pairs_hook=_object_without_duplicates, parse_constant=_reject_constant
        )
    except _DuplicateKeyError as exc:
        raise CatalogImportError(f"not a valid catalogue: duplicate key {exc.key[:40]!r}") from exc
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and NaN/Infinity.
        raise CatalogImportError(f"not valid JSON: {_one_line(exc)}") from exc
    if not isinstance(document, dict):
        raise CatalogImportError(
            f"not a valid catalogue: expected an object of id -> book, got {_json_type(document)}"
        )
    if not document:
        raise CatalogImportError("not a valid catalogue: it contains no books")
    if len(document) > MAX_BOOKS:
        raise CatalogImportError(f"not a valid catalogue: more than {MAX_BOOKS} books")
    for book_id, book in document.items():
        _check_book(book_id, book)
    return document


def _check_book(book_id: str, book: object) -> None:
    if not is_valid_book_id(book_id):
        raise CatalogImportError(
            f"book id {book_id[:40]!r} is not a decimal number of 1-{MAX_ID_LENGTH} digits"
        )
    if not isinstance(book, dict):
        raise CatalogImportError(f"book {book_id}: expected an object, got {_json_type(book)}")
    for field in REQUIRED_FIELDS:
        if field not in book:
            raise CatalogImportError(f"book {book_id}: missing field {field!r}")
    for field in REQUIRED_FIELDS + OPTIONAL_FIELDS:
        if field in book and not isinstance(book[field], str):
            raise CatalogImportError(
                f"book {book_id}: field {field!r} must be a string, got {_json_type(book[field])}"
            )


def _fetch(url: str, timeout: float, max_bytes: int) -> bytes:
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise CatalogImportError(f"{url} is larger than {max_bytes} bytes")
            chunks: list[bytes] = []
            received = 0
            while chunk := response.read(_READ_CHUNK):
                received += len(chunk)
                if received > max_bytes:
                    raise CatalogImportError(f"{url} is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise CatalogImportError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise CatalogImportError(f"cannot fetch {url}: {_one_line(exc.reason)}") from exc
    except TimeoutError as exc:
        raise CatalogImportError(f"cannot fetch {url}: timed out after {timeout:g}s") from exc
    except (OSError, ValueError) as exc:
        # ValueError: a malformed URL; OSError: a connection dropped mid-body.
        raise CatalogImportError(f"cannot fetch {url}: {_one_line(exc)}") from exc
    return b"".join(chunks)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated id would silently keep only one of the books; refuse instead.
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a catalogue")


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text or type(value).__name__
