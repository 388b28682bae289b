"""A small Django site for the WSGI and ASGI tests: three views, configured once per
process (Django's settings are global), with these settings in force while a test runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _django_hello(request: Any) -> Any:
    from django.http import HttpResponse

    # WSGI says it in the environ; Django's ASGI handler leaves it to the scope.
    protocol = request.META.get("SERVER_PROTOCOL") or "HTTP/" + request.scope["http_version"]
    return HttpResponse(f"hello from django over {protocol}")


def _django_form(request: Any) -> Any:
    from django.http import HttpResponseNotAllowed, JsonResponse

    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    upload = request.FILES.get("upload")
    return JsonResponse(
        {
            "name": request.POST["name"],
            "size": len(upload.read()) if upload is not None else None,
            "path": request.path,
        }
    )


def _django_stream(request: Any) -> Any:
    from django.http import StreamingHttpResponse

    count = int(request.GET.get("n", "3"))
    return StreamingHttpResponse(f"chunk {i}\n".encode() for i in range(count))


def _django_urls() -> list[Any]:
    from django.urls import path

    return [
        path("hello", _django_hello),
        path("form", _django_form),
        path("stream", _django_stream),
    ]


urlpatterns: list[Any] = []  # filled once Django is configured (ROOT_URLCONF is this module)


@contextmanager
def configured() -> Iterator[None]:
    """Django set up for this site; another test module may have configured it first,
    so these settings are made to win for as long as the block runs."""
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="test-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            DATABASES={},
        )
        django.setup()
    urlpatterns[:] = _django_urls()
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[]):
        yield
