"""Importing `module:attribute` and telling ASGI, WSGI and native apps apart."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from h2books.http import Request, Response
from h2books.interfaces.asgi import AsgiInterface
from h2books.interfaces.loader import (
    AppLoadError,
    build_interface,
    detect_interface,
    import_from_string,
    load_app,
)
from h2books.server.config import ServerConfig


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    pass


class AsgiObject:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


def wsgi_function(environ: Any, start_response: Any) -> list[bytes]:
    return []


class WsgiObject:
    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        return []


def native(request: Request) -> Response:
    return Response()


async def native_async(request: Request) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("app", "kind"),
    [
        (asgi_function, "asgi"),
        (AsgiObject(), "asgi"),
        (wsgi_function, "wsgi"),
        (WsgiObject(), "wsgi"),
        (native, "native"),
        (native_async, "native"),
    ],
)
def test_detection(app: Any, kind: str) -> None:
    assert detect_interface(app) == kind


def test_frameworks_are_detected() -> None:
    from fastapi import FastAPI
    from flask import Flask
    from starlette.applications import Starlette

    assert detect_interface(FastAPI()) == "asgi"
    assert detect_interface(Starlette()) == "asgi"
    assert detect_interface(Flask("x")) == "wsgi"


def test_the_bookstore_is_native(tmp_path: Path) -> None:
    from h2books.app import create_app

    assert detect_interface(create_app(tmp_path)) == "native"


def test_import_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myapp_for_loader.py").write_text(
        "class Api:\n    class inner:\n        app = 'found'\n\ndef make():\n    return 'made'\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert import_from_string("myapp_for_loader:Api.inner.app") == "found"
    with pytest.raises(AppLoadError, match=r"not callable|not an app"):
        load_app("myapp_for_loader:Api.inner.app")
    assert load_app("myapp_for_loader:make") is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "MODULE:ATTRIBUTE"),
        ("no_such_module_here:app", "no such module"),
        ("h2books.http:nothing", "no attribute"),
    ],
)
def test_load_errors_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(AppLoadError, match=message):
        load_app(spec)


def test_build_interface() -> None:
    config = ServerConfig()
    assert isinstance(build_interface(asgi_function, "auto", config), AsgiInterface)
    assert build_interface(native, "auto", config) is native
    with pytest.raises(AppLoadError):
        build_interface(native, "cgi", config)


@pytest.mark.parametrize("app, kind", [(wsgi_function, "wsgi"), (native, "native")])
def test_lifespan_on_is_refused_for_an_app_without_one(app: Any, kind: str) -> None:
    config = ServerConfig(data_dir=Path("/nonexistent"))
    config.lifespan = "on"
    with pytest.raises(AppLoadError, match=f"a {kind} app has no lifespan"):
        build_interface(app, "auto", config)
    config.lifespan = "auto"
    build_interface(app, "auto", config)  # the default serves it
