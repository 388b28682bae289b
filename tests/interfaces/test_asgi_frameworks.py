"""Real frameworks on the ASGI interface, over HTTP/2 and HTTP/1.1: FastAPI and Starlette."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

from h2books.interfaces.asgi import AsgiInterface
from h2books.server.config import ServerConfig
from tests.interfaces import django_site
from tests.threaded_server import ThreadedServer

DONE_IN_BACKGROUND: list[str] = []
BACKGROUND_RAN = threading.Event()


def asgi(app: Any, **options: Any) -> Callable[[ServerConfig], AsgiInterface]:
    """What ThreadedServer takes: the interface built from the server's config."""
    return lambda config: AsgiInterface(app, config, **options)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def fastapi_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"greeting": "hello from lifespan"}

    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @app.get("/sync/{name}")
    def sync_endpoint(name: str) -> dict[str, str]:  # runs in FastAPI's thread pool
        return {"hello": name}

    @app.post("/items")
    async def create_item(item: Item) -> dict[str, Any]:
        return {"total": item.price * 2, "name": item.name, "tags": item.tags}

    @app.post("/form")
    async def form(user: str = Form(...), age: int = Form(...)) -> dict[str, Any]:
        return {"user": user, "age": age}

    @app.post("/upload")
    async def upload(
        note: str = Form(...),
        file: UploadFile = File(...),  # noqa: B008 - FastAPI's own idiom
    ) -> dict[str, Any]:
        content = await file.read()
        return {
            "note": note,
            "filename": file.filename,
            "size": len(content),
            "head": content[:4].hex(),
        }

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def numbers() -> AsyncIterator[bytes]:
            for i in range(50):
                await asyncio.sleep(0)
                yield f"{i}\n".encode()

        return StreamingResponse(numbers(), media_type="text/plain")

    @app.post("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        def remember() -> None:
            DONE_IN_BACKGROUND.append("ran")
            BACKGROUND_RAN.set()

        tasks.add_task(remember)
        return {"status": "queued"}

    @app.get("/state")
    async def state(request: Request) -> dict[str, str]:
        return {"greeting": request.state.greeting}

    return app


@pytest.fixture(scope="module")
def fastapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    with ThreadedServer(tmp_path_factory.mktemp("fastapi"), asgi(fastapi_app())) as s:
        yield s


@pytest.fixture
def api(fastapi_server: ThreadedServer, protocol: str) -> Iterator[httpx.Client]:
    with fastapi_server.client(protocol) as c:
        yield c


def test_path_and_query_parameters(api: httpx.Client) -> None:
    assert api.get("/items/42?q=books").json() == {"item_id": 42, "q": "books"}
    assert api.get("/items/nope").status_code == 422


def test_sync_endpoint_in_the_thread_pool(api: httpx.Client) -> None:
    assert api.get("/sync/ada").json() == {"hello": "ada"}


def test_json_body(api: httpx.Client) -> None:
    r = api.post("/items", json={"name": "book", "price": 2.5, "tags": ["sf"]})
    assert r.json() == {"total": 5.0, "name": "book", "tags": ["sf"]}


def test_form(api: httpx.Client) -> None:
    assert api.post("/form", data={"user": "ada", "age": "36"}).json() == {"user": "ada", "age": 36}


def test_multipart_upload(api: httpx.Client) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB: several windows on h2, read as it comes
    r = api.post("/upload", data={"note": "n"}, files={"file": ("f.bin", content)})
    assert r.json() == {"note": "n", "filename": "f.bin", "size": len(content), "head": "00010203"}


def test_streaming_response(api: httpx.Client) -> None:
    r = api.get("/stream")
    assert r.text == "".join(f"{i}\n" for i in range(50))


def test_background_tasks(api: httpx.Client) -> None:
    BACKGROUND_RAN.clear()
    assert api.post("/background").json() == {"status": "queued"}
    assert BACKGROUND_RAN.wait(10)


def test_lifespan_state(api: httpx.Client) -> None:
    assert api.get("/state").json() == {"greeting": "hello from lifespan"}


def test_starlette_file_response_uses_pathsend(tmp_path: Path, protocol: str) -> None:
    content = b"0123456789" * 300_000
    path = tmp_path / "big.txt"
    path.write_bytes(content)

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse("home")

    async def download(request: Any) -> FileResponse:
        return FileResponse(path)

    app = Starlette(routes=[Route("/", home), Route("/file", download)])
    with ThreadedServer(tmp_path, asgi(app)) as server, server.client(protocol) as c:
        assert c.get("/").text == "home"
        r = c.get("/file")
        assert r.status_code == 200 and r.content == content
        assert r.headers["content-length"] == str(len(content))


# -- Django, through its ASGI handler -------------------------------------------------------


@pytest.fixture(scope="module")
def django_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    from django.core.handlers.asgi import ASGIHandler

    with django_site.configured():
        app = ASGIHandler()
        with ThreadedServer(
            tmp_path_factory.mktemp("django-asgi"), asgi(app, lifespan="off"), root_path="/site"
        ) as s:
            yield s


@pytest.fixture
def django(django_server: ThreadedServer, protocol: str) -> Iterator[httpx.Client]:
    with django_server.client(protocol, timeout=30) as c:
        yield c


def test_django_views_over_asgi(django: httpx.Client, protocol: str) -> None:
    # Mounted at /site behind a proxy that strips the prefix (--root-path /site): the
    # client asks for /hello, Django sees SCRIPT_NAME /site and builds its paths with it.
    r = django.get("/hello")
    expected = "HTTP/2" if protocol == "h2" else "HTTP/1.1"
    assert r.status_code == 200 and r.text == f"hello from django over {expected}"
    assert django.get("/nowhere").status_code == 404
    assert django.get("/form").status_code == 405


def test_django_form_and_upload_over_asgi(django: httpx.Client) -> None:
    blob = b"z" * 300_000  # several reads of the body, several h2 DATA frames
    r = django.post("/form", data={"name": "up"}, files={"upload": ("z.bin", blob)})
    assert r.json() == {"name": "up", "size": len(blob), "path": "/site/form"}


# The site's view streams a sync generator, which Django's ASGI handler warns about.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")
def test_django_streaming_response_over_asgi(django: httpx.Client) -> None:
    r = django.get("/stream?n=50")
    assert r.text == "".join(f"chunk {i}\n" for i in range(50))
