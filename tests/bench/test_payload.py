"""The bulk-transfer app: /bytes/N answers N bytes, bounded, cached per size."""

from __future__ import annotations

import pytest

from h2books.bench.payload import MAX_PAYLOAD, create_payload_app, payload
from h2books.http import Request, Response


def get(app: object, path: str, method: str = "GET") -> Response:
    response = app(Request(method, path, "", []))  # type: ignore[operator]
    assert isinstance(response, Response)
    return response


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 100_000])
def test_bytes_of_the_asked_size(size: int) -> None:
    response = get(create_payload_app(), f"/bytes/{size}")
    assert response.status == 200
    assert response.body == payload(size) and len(response.body) == size
    assert response.body[:3] == bytes(range(min(size, 3)))


def test_the_body_is_built_once_per_size() -> None:
    app = create_payload_app()
    assert get(app, "/bytes/1000") is get(app, "/bytes/1000")
    assert get(app, "/bytes/1000", "HEAD") is get(app, "/bytes/1000")


def test_only_a_few_sizes_are_kept() -> None:
    app = create_payload_app()
    first = get(app, "/bytes/1")
    for size in range(2, 40):
        get(app, f"/bytes/{size}")
    assert len(app._responses) <= 8  # type: ignore[attr-defined]
    assert get(app, "/bytes/1") is not first


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 404),
        ("/bytes", 404),
        ("/bytes/", 400),
        ("/bytes/-1", 400),
        ("/bytes/1e3", 400),
        ("/bytes/\u0661\u0662", 400),  # Arabic-Indic digits: int() reads them, we do not
        (f"/bytes/{MAX_PAYLOAD + 1}", 400),
        ("/bytes/" + "9" * 40, 400),
    ],
)
def test_bad_paths(path: str, status: int) -> None:
    assert get(create_payload_app(), path).status == status


def test_only_get_and_head() -> None:
    assert get(create_payload_app(), "/bytes/1", "POST").status == 405
