"""The bookstore's bodies, precomputed once for a peer server, from our own catalogue."""

from __future__ import annotations

import json
import os
from pathlib import Path

from h2books.app import open_catalog

__all__ = ["DATA_DIR_VARIABLE", "Bodies", "data_dir_from_environment", "load_bodies"]

# How the ASGI servers' app module finds the data directory: they import it by name.
DATA_DIR_VARIABLE = "H2BOOKS_BENCH_DATA_DIR"


class Bodies:
    """The index body and one body per book id, all bytes ready to send."""

    __slots__ = ("books", "index")

    def __init__(self, index: bytes, books: dict[str, bytes]) -> None:
        self.index = index
        self.books = books


def load_bodies(data_dir: Path) -> Bodies:
    with open_catalog(data_dir) as store:
        books = store.books()
    # The post's index: json.dumps(list(BOOKS.keys())), as our bookstore serves it.
    index = json.dumps([book_id for book_id, _ in books]).encode()
    return Bodies(index, dict(books))


def data_dir_from_environment() -> Path:
    raw = os.environ.get(DATA_DIR_VARIABLE)
    if not raw:
        raise RuntimeError(f"set {DATA_DIR_VARIABLE} to the bookstore's data directory")
    return Path(raw)
