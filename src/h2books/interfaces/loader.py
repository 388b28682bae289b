"""`h2books serve main:app`: import the user's app and pick the interface that serves it.

`MODULE:ATTRIBUTE` imports MODULE (the current directory first on sys.path, as
`uvicorn main:app` does) and takes ATTRIBUTE, which may be dotted (`pkg.web:api.app`).
With `factory=True` the attribute is called with no arguments and returns the app
(called in each worker, so every process builds its own).

The kind of app is detected from its call signature, or named with `--interface`:
- ASGI 3: an async callable of (scope, receive, send): a coroutine function, or an
  object whose `__call__` is one (Starlette, FastAPI, Django's ASGIHandler);
- WSGI: a plain callable of (environ, start_response) (Flask, Django's WSGIHandler);
- native: a callable of one `Request` (h2books' own handler API).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from h2books.interfaces import ServerInterface
    from h2books.server.config import ServerConfig

INTERFACES = ("auto", "asgi", "wsgi", "native")


class AppLoadError(Exception):
    """The app cannot be imported or served; the message is one line for the user."""

    user_facing = True


def import_from_string(spec: str, *, directory: str | None = None) -> Any:
    """`module:attribute.path` -> the object; the current directory is importable first."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AppLoadError(f"the app must look like MODULE:ATTRIBUTE (main:app), not {spec!r}")
    search = directory if directory is not None else os.getcwd()
    if search not in sys.path:
        sys.path.insert(0, search)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise AppLoadError(f"cannot import {module_name!r}: no such module") from None
        raise  # the module exists but imports something missing: the traceback helps
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppLoadError(f"{module_name!r} has no attribute {attribute!r}") from None
    return target


def load_app(spec: str, *, factory: bool = False) -> Any:
    target = import_from_string(spec)
    if factory:
        if not callable(target):
            raise AppLoadError(f"{spec} is not callable: it cannot be a factory")
        target = target()
    if not callable(target):
        raise AppLoadError(f"{spec} is {type(target).__name__}, not an app (a callable)")
    return target


def detect_interface(app: Any) -> str:
    """ "asgi", "wsgi" or "native", from how the app is called."""
    call = app
    if not inspect.isroutine(app) and not inspect.isclass(app):
        # An object: what counts is its class's __call__, bound (`self` is no parameter).
        call = app.__call__
    if inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app):
        return "asgi" if _positional_count(call) >= 3 else "native"
    count = _positional_count(call)
    if count == 2:
        return "wsgi"
    if count == 1:
        return "native"
    if count >= 3:
        # A plain callable of three: an ASGI app wrapped in something sync-looking.
        return "asgi"
    raise AppLoadError(
        f"cannot tell what kind of app {app!r} is; name it with --interface asgi|wsgi|native"
    )


def _positional_count(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return -1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters):
        return 3  # *args: anything goes; ASGI is the likeliest
    return sum(1 for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty)


def lifespan_refusal(kind: str, lifespan: str) -> str | None:
    """Why `--lifespan` cannot serve an app of this kind, or None. "on" asks for startup
    and shutdown events that only ASGI defines: saying nothing would run the app without
    what its author asked for."""
    if lifespan == "on" and kind in ("wsgi", "native"):
        return f"--lifespan on: a {kind} app has no lifespan (ASGI only)"
    return None


def build_interface(app: Any, kind: str, config: ServerConfig) -> ServerInterface | Any:
    """The interface that serves `app` (kind "auto" detects); a native handler is returned
    as it is (the Server wraps it)."""
    if kind == "auto":
        kind = detect_interface(app)
    refusal = lifespan_refusal(kind, config.lifespan)
    if refusal is not None:
        raise AppLoadError(refusal)
    if kind == "asgi":
        from h2books.interfaces.asgi import AsgiInterface

        return AsgiInterface(app, config)
    if kind == "wsgi":
        try:
            wsgi = importlib.import_module("h2books.interfaces.wsgi")
        except ModuleNotFoundError:
            raise AppLoadError("this h2books has no WSGI support (interfaces/wsgi.py)") from None
        return wsgi.WsgiInterface(app, config)
    if kind == "native":
        return app
    raise AppLoadError(f"--interface must be one of {', '.join(INTERFACES)}, not {kind!r}")


def describe(spec: str, kind: str) -> str:
    """How the banner names what is served: `main:app (ASGI)`."""
    return f"{spec} ({kind.upper() if kind != 'native' else 'native handler'})"
