"""The catalogue, kept in SQLite as the exact JSON bytes each book is served as.

One file, ``DATA_DIR/catalog.sqlite3``::

    books(id TEXT PRIMARY KEY, position INTEGER UNIQUE, json TEXT)   -- catalogue order
    meta(key TEXT PRIMARY KEY, value)                                -- catalog_id, generation, ...

Every change to ``books`` bumps ``meta.generation`` through triggers, so even an edit
made with the ``sqlite3`` shell changes `CatalogStore.version`. Readers (the server
workers) keep one connection open and ask for the version about once a second; the
writer (``h2books catalog import``) replaces the whole catalogue in one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from h2books.app.generator import DEFAULT_COUNT, DEFAULT_SEED, generate_books

__all__ = [
    "CATALOG_FILENAME",
    "MAX_ID_LENGTH",
    "CatalogError",
    "CatalogStore",
    "is_valid_book_id",
    "open_catalog",
]

CATALOG_FILENAME = "catalog.sqlite3"
MAX_ID_LENGTH = 20
SCHEMA_VERSION = 1

# Ids are plain decimal numbers, like the post's "1".."3000". They never need
# percent-encoding, so a request for ``/book?id=<id>`` can be matched verbatim.
_BOOK_ID = re.compile(rf"[0-9]{{1,{MAX_ID_LENGTH}}}")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value NOT NULL) WITHOUT ROWID;
CREATE TABLE books (
    id TEXT PRIMARY KEY NOT NULL,
    position INTEGER NOT NULL UNIQUE,
    json TEXT NOT NULL
);
CREATE TRIGGER books_inserted AFTER INSERT ON books BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER books_updated AFTER UPDATE ON books BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER books_deleted AFTER DELETE ON books BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'generation';
END;
"""

_T = TypeVar("_T")

# How long a reader waits for a writer's lock (and vice versa) before giving up.
_BUSY_TIMEOUT_SECONDS = 10.0


class CatalogError(Exception):
    """The catalogue cannot be opened, read or written; the message is one line."""


def is_valid_book_id(book_id: object) -> bool:
    return isinstance(book_id, str) and _BOOK_ID.fullmatch(book_id) is not None


class CatalogStore:
    """An open catalogue. Reads are cheap; `replace_all` swaps the whole catalogue."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection, self._identity = _connect(path)

    def books(self) -> list[tuple[str, bytes]]:
        """All books as (id, JSON bytes to serve), in catalogue order."""
        return self.snapshot()[1]

    def version(self) -> str:
        """Changes whenever the catalogue does (including when the file is replaced)."""
        with self._lock:
            self._follow_replaced_file()
            return self._run(lambda: self._read_version(self._connection))

    def snapshot(self) -> tuple[str, list[tuple[str, bytes]]]:
        """The version and the books, read in one transaction so they belong together."""

        def read(connection: sqlite3.Connection) -> tuple[str, list[tuple[str, bytes]]]:
            connection.execute("BEGIN")
            try:
                version = self._read_version(connection)
                rows = connection.execute("SELECT id, json FROM books ORDER BY position")
                books = [(book_id, text.encode()) for book_id, text in rows]
            finally:
                connection.execute("COMMIT")
            return version, books

        with self._lock:
            self._follow_replaced_file()
            return self._run(lambda: read(self._connection))

    def replace_all(
        self,
        books: Mapping[str, Mapping[str, Any] | str | bytes]
        | Iterable[tuple[str, Mapping[str, Any] | str | bytes]],
        *,
        source: str | None = None,
    ) -> int:
        """Replace the whole catalogue, keeping the given order; returns the book count.

        A book given as a mapping is stored as ``json.dumps(book)`` (default separators,
        ASCII-escaped, its own key order): exactly what the 2016 post's server sent.
        A book given as ``str``/``bytes`` must already be JSON and is stored unchanged.
        """
        rows = _rows(books)
        with self._lock:
            self._follow_replaced_file()
            self._run(lambda: _write_catalog(self._connection, rows, source))
        return len(rows)

    def meta(self, key: str) -> str | None:
        """A value of the meta table (e.g. ``source``), for status displays."""
        with self._lock:
            row = self._run(
                lambda: self._connection.execute(
                    "SELECT value FROM meta WHERE key = ?", (key,)
                ).fetchone()
            )
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CatalogStore {str(self.path)!r}>"

    @staticmethod
    def _read_version(connection: sqlite3.Connection) -> str:
        rows = dict(
            connection.execute(
                "SELECT key, value FROM meta WHERE key IN ('catalog_id', 'generation')"
            ).fetchall()
        )
        if len(rows) != 2:
            raise sqlite3.DatabaseError("meta table lacks catalog_id or generation")
        return f"{rows['catalog_id']}.{rows['generation']}"

    def _follow_replaced_file(self) -> None:
        # A kept-open connection would keep reading a file that was renamed over (say,
        # a restored backup) forever; reopen when the path names another file.
        try:
            identity = _file_identity(self.path)
        except OSError:
            return  # Deleted under us: keep serving what we have.
        if identity != self._identity:
            connection, self._identity = _connect(self.path)
            self._connection.close()
            self._connection = connection

    def _run(self, operation: Callable[[], _T]) -> _T:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            raise CatalogError(f"catalog {self.path}: {_one_line(exc)}") from exc
        except sqlite3.DatabaseError as exc:
            raise CatalogError(
                f"catalog {self.path} is corrupt or not a catalogue: {_one_line(exc)}"
            ) from exc


def open_catalog(data_dir: Path) -> CatalogStore:
    """Open ``data_dir/catalog.sqlite3``, creating it from the generator on first run.

    Creation is atomic: the database is built under a temporary name and then linked
    into place only if no other process got there first, so workers starting together
    all end up reading the same complete file.
    """
    data_dir = Path(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(f"cannot create data directory {data_dir}: {_one_line(exc)}") from exc
    if not data_dir.is_dir():
        raise CatalogError(f"data directory {data_dir} is not a directory")
    if not os.access(data_dir, os.R_OK | os.X_OK):
        raise CatalogError(f"data directory {data_dir} is not readable")
    path = data_dir / CATALOG_FILENAME
    if not path.exists():
        _create_generated(path)
    if not os.access(path, os.R_OK):
        raise CatalogError(f"catalog {path} is not readable")
    return CatalogStore(path)


def _create_generated(path: Path) -> None:
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise CatalogError(f"cannot create catalog {path}: data directory is not writable")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        connection = sqlite3.connect(temporary, isolation_level=None)
        try:
            _initialise(connection)
            rows = _rows(generate_books(DEFAULT_SEED, DEFAULT_COUNT))
            _write_catalog(connection, rows, f"generated (seed {DEFAULT_SEED})")
        finally:
            connection.close()
        try:
            # link() refuses to overwrite: the first complete file wins, and readers
            # that already opened it never see it replaced.
            os.link(temporary, path)
        except FileExistsError:
            pass
        except OSError:
            # Filesystems without hard links: fall back to an atomic rename.
            if not path.exists():
                os.replace(temporary, path)
    except (OSError, sqlite3.Error) as exc:
        raise CatalogError(f"cannot create catalog {path}: {_one_line(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _connect(path: Path) -> tuple[sqlite3.Connection, tuple[int, int]]:
    read_only = not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK)
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    try:
        identity = _file_identity(path)
        connection = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            timeout=_BUSY_TIMEOUT_SECONDS,
            check_same_thread=False,
        )
    except (OSError, sqlite3.Error) as exc:
        raise CatalogError(f"cannot open catalog {path}: {_one_line(exc)}") from exc
    try:
        _check_schema(connection)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise CatalogError(
            f"catalog {path} is corrupt or not a catalogue: {_one_line(exc)}"
        ) from exc
    return connection, identity


def _check_schema(connection: sqlite3.Connection) -> None:
    tables = {
        name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
    }
    if not {"books", "meta"} <= tables:
        raise sqlite3.DatabaseError("missing the books or meta table")
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        found = None if row is None else row[0]
        raise sqlite3.DatabaseError(f"schema version {found!r}, expected {SCHEMA_VERSION}")
    (verdict,) = connection.execute("PRAGMA quick_check").fetchone()
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")


def _initialise(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA)
    connection.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?)",
        [
            ("schema_version", SCHEMA_VERSION),
            ("catalog_id", uuid.uuid4().hex[:12]),
            ("generation", 0),
        ],
    )


def _rows(
    books: Mapping[str, Mapping[str, Any] | str | bytes]
    | Iterable[tuple[str, Mapping[str, Any] | str | bytes]],
) -> list[tuple[str, int, str]]:
    items = books.items() if isinstance(books, Mapping) else books
    rows: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    for position, (book_id, book) in enumerate(items):
        if not is_valid_book_id(book_id):
            raise CatalogError(
                f"book id {book_id!r} is not a decimal number of 1-{MAX_ID_LENGTH} digits"
            )
        if book_id in seen:
            raise CatalogError(f"duplicate book id {book_id!r}")
        seen.add(book_id)
        if isinstance(book, Mapping):
            text = json.dumps(book)
        elif isinstance(book, bytes | str):
            text = _checked_json_text(book_id, book)
        else:
            raise CatalogError(f"book {book_id!r} is a {type(book).__name__}, not a JSON object")
        rows.append((book_id, position, text))
    return rows


def _checked_json_text(book_id: str, book: str | bytes) -> str:
    try:
        text = book.decode() if isinstance(book, bytes) else book
        json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"book {book_id!r} is not valid JSON: {_one_line(exc)}") from exc
    return text


def _write_catalog(
    connection: sqlite3.Connection, rows: list[tuple[str, int, str]], source: str | None
) -> None:
    # IMMEDIATE takes the write lock up front, so readers keep seeing the old
    # catalogue until COMMIT and then the whole new one.
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("DELETE FROM books")
        connection.executemany("INSERT INTO books (id, position, json) VALUES (?, ?, ?)", rows)
        # Bump once more so an (improbable) empty-to-empty replacement is a change too.
        connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        if source is not None:
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('source', ?)", (source,)
            )
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _file_identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
