"""The bookstore every server in a benchmark serves: one data directory, one certificate."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from h2books.app import import_catalog, open_catalog
from h2books.bench.servers import BenchPaths
from h2books.certs import ensure_certificates

__all__ = ["Workspace", "workspace"]


@dataclass(frozen=True, slots=True)
class Workspace:
    paths: BenchPaths
    book_ids: tuple[str, ...]
    scratch: Path  # server logs and URI lists


@contextlib.contextmanager
def workspace(data_dir: Path | None = None, catalog: str | None = None) -> Iterator[Workspace]:
    """A data directory (a fresh one with the generated catalogue unless given), and its ids.

    `catalog` (a books.json path or URL) is imported first, so that a run can use the
    post's own books.
    """
    with tempfile.TemporaryDirectory(prefix="h2books-bench-") as scratch_name:
        scratch = Path(scratch_name)
        directory = data_dir if data_dir is not None else scratch / "data"
        directory.mkdir(parents=True, exist_ok=True)
        if catalog is not None:
            import_catalog(directory, catalog)
        with open_catalog(directory) as store:
            ids = tuple(book_id for book_id, _ in store.books())
        tls = ensure_certificates(directory / "tls")
        logs = scratch / "logs"
        logs.mkdir()
        yield Workspace(BenchPaths(directory, tls.cert, tls.key, tls.ca_cert), ids, logs)
