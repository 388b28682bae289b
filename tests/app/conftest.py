"""Shared fixtures for the bookstore tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

# The 2016 post's data lives next to the repository, never inside it.
POST_BOOKS_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "books.json"


@pytest.fixture(scope="session")
def post_books_path() -> Path:
    if not POST_BOOKS_PATH.is_file():
        pytest.skip(f"the post's books.json is not available at {POST_BOOKS_PATH}")
    return POST_BOOKS_PATH


@pytest.fixture(scope="session")
def post_books(post_books_path: Path) -> dict[str, dict[str, Any]]:
    books: dict[str, dict[str, Any]] = json.loads(post_books_path.read_bytes())
    return books
