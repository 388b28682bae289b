from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from h2books.app.generator import generate_books
from h2books.app.store import CATALOG_FILENAME, CatalogError, CatalogStore, open_catalog

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(
    RUNNING_AS_ROOT, reason="root ignores file permissions, so they cannot be tested"
)

SMALL = {
    "10": {"title": "A", "author": "B", "url": "u", "score": "1"},
    "2": {"score": "2", "title": "Ä", "author": "C", "url": "v", "vote_count": "3"},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CatalogStore]:
    with open_catalog(tmp_path / "data") as opened:
        yield opened


def test_first_open_generates_the_default_catalogue(store: CatalogStore, tmp_path: Path) -> None:
    expected = generate_books()
    books = store.books()
    assert [book_id for book_id, _ in books] == list(expected)
    assert all(body == json.dumps(expected[book_id]).encode() for book_id, body in books)
    assert store.path == tmp_path / "data" / CATALOG_FILENAME
    assert store.meta("source") == "generated (seed 2016)"


def test_creation_leaves_no_temporary_files(store: CatalogStore) -> None:
    assert sorted(path.name for path in store.path.parent.iterdir()) == [CATALOG_FILENAME]


def test_reopen_keeps_catalogue_and_version(store: CatalogStore) -> None:
    with open_catalog(store.path.parent) as again:
        assert again.version() == store.version()
        assert again.books() == store.books()


def test_replace_all_keeps_order_and_changes_version(store: CatalogStore) -> None:
    before = store.version()
    assert store.replace_all(SMALL, source="test") == 2
    assert store.books() == [
        (book_id, json.dumps(book).encode()) for book_id, book in SMALL.items()
    ]
    assert store.version() != before
    assert store.meta("source") == "test"


def test_replace_all_accepts_pairs_and_ready_json(store: CatalogStore) -> None:
    store.replace_all([("3", '{"title": "x"}'), ("1", b'{"title": "y"}'), ("2", {"z": 1})])
    assert store.books() == [
        ("3", b'{"title": "x"}'),
        ("1", b'{"title": "y"}'),
        ("2", b'{"z": 1}'),
    ]


def test_identical_replacement_is_still_a_new_version(store: CatalogStore) -> None:
    store.replace_all(SMALL)
    before = store.version()
    store.replace_all(SMALL)
    assert store.version() != before


def test_another_connection_sees_the_change(store: CatalogStore) -> None:
    with open_catalog(store.path.parent) as writer:
        before = store.version()
        writer.replace_all(SMALL)
    assert store.version() != before
    assert store.books() == [
        (book_id, json.dumps(book).encode()) for book_id, book in SMALL.items()
    ]


def test_an_edit_from_outside_changes_the_version(store: CatalogStore) -> None:
    before = store.version()
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE books SET json = '{}' WHERE id = '1'")
    assert store.version() != before
    assert store.books()[0] == ("1", b"{}")


def test_a_file_renamed_over_the_catalogue_is_followed(store: CatalogStore, tmp_path: Path) -> None:
    with open_catalog(tmp_path / "other") as other:
        other.replace_all(SMALL)
        other_version = other.version()
    os.replace(tmp_path / "other" / CATALOG_FILENAME, store.path)
    assert store.version() == other_version
    assert [book_id for book_id, _ in store.books()] == ["10", "2"]


def test_snapshot_pairs_version_with_books(store: CatalogStore) -> None:
    store.replace_all(SMALL)
    version, books = store.snapshot()
    assert version == store.version()
    assert books == store.books()


@pytest.mark.parametrize(
    ("books", "message"),
    [
        ({"abc": {}}, "book id 'abc' is not a decimal number"),
        ({"": {}}, "book id '' is not a decimal number"),
        ({"1" * 21: {}}, "is not a decimal number"),
        ([("1", {}), ("1", {})], "duplicate book id '1'"),
        ([(1, {})], "book id 1 is not a decimal number"),
        ({"1": "{not json"}, "book '1' is not valid JSON"),
        ({"1": b"\xff"}, "book '1' is not valid JSON"),
        ({"1": 5}, "book '1' is a int, not a JSON object"),
    ],
)
def test_replace_all_refuses_bad_books_and_changes_nothing(
    store: CatalogStore, books: object, message: str
) -> None:
    before = store.snapshot()
    with pytest.raises(CatalogError, match=message):
        store.replace_all(books)  # type: ignore[arg-type]
    assert store.snapshot() == before


def test_failed_write_rolls_back(store: CatalogStore) -> None:
    before = store.snapshot()
    with sqlite3.connect(store.path) as connection:
        # A trigger that fails mid-replacement, after the old rows were deleted.
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON books WHEN NEW.id = '2' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    with pytest.raises(CatalogError, match="refused"):
        store.replace_all(SMALL)
    assert store.snapshot() == before


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / CATALOG_FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="corrupt or not a catalogue") as caught:
        open_catalog(tmp_path)
    assert "\n" not in str(caught.value)


def test_sqlite_file_without_our_tables_is_a_clear_error(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / CATALOG_FILENAME) as connection:
        connection.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(CatalogError, match="missing the books or meta table"):
        open_catalog(tmp_path)


def test_future_schema_is_a_clear_error(store: CatalogStore) -> None:
    with sqlite3.connect(store.path) as connection:
        connection.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(CatalogError, match="schema version 99, expected 1"):
        open_catalog(store.path.parent)


def test_truncated_database_is_a_clear_error(store: CatalogStore, tmp_path: Path) -> None:
    data = store.path.read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CATALOG_FILENAME).write_bytes(data[: len(data) // 3])
    with pytest.raises(CatalogError, match="corrupt or not a catalogue"):
        CatalogStore(broken / CATALOG_FILENAME).books()


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogError, match="data directory"):
        open_catalog(tmp_path / "file")
    with pytest.raises(CatalogError, match="cannot create data directory"):
        open_catalog(tmp_path / "file" / "below")


@needs_permissions
def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CatalogError, match="not writable"):
            open_catalog(tmp_path)
    finally:
        tmp_path.chmod(0o700)


@needs_permissions
def test_unreadable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    tmp_path.chmod(0o300)
    try:
        with pytest.raises(CatalogError, match="not readable"):
            open_catalog(tmp_path)
    finally:
        tmp_path.chmod(0o700)


@needs_permissions
def test_read_only_catalogue_is_served_but_not_replaced(store: CatalogStore) -> None:
    store.path.chmod(0o400)
    try:
        with open_catalog(store.path.parent) as read_only:
            assert read_only.books() == store.books()
            with pytest.raises(CatalogError, match=r"readonly|read-only"):
                read_only.replace_all(SMALL)
    finally:
        store.path.chmod(0o600)


_REPORT_VERSION = """
import sys
from pathlib import Path
from h2books.app.store import open_catalog
with open_catalog(Path(sys.argv[1])) as store:
    print(store.version(), len(store.books()))
"""


def test_workers_starting_together_share_one_catalogue(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _REPORT_VERSION, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
        )
        for _ in range(6)
    ]
    reports = set()
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err.decode()
        reports.add(out.decode().strip())
    assert len(reports) == 1
    assert reports.pop().endswith(" 3000")
    assert sorted(path.name for path in data_dir.iterdir()) == [CATALOG_FILENAME]
