"""Turning a handler's Response into what each protocol core sends, cached per second.

A precomputed Response is sent many times a second; its HTTP/1.1 head and its HTTP/2
field list are built once per Date value and kept on the object itself.
"""

from __future__ import annotations

import json

from h2books.http import Response
from h2books.protocol.h1 import ResponseHead, serialize_head

# Statuses that never carry a body, so never a content-length computed from one.
_BODYLESS = frozenset({204, 304})
_CONTENT_LENGTH = b"content-length"


def _fixed_fields(
    response: Response, server_name: bytes, alt_svc: bytes | None
) -> list[tuple[bytes, bytes]]:
    fields = list(response.headers)
    if (
        response.stream is None
        and response.status not in _BODYLESS
        and not any(name == _CONTENT_LENGTH for name, _ in fields)
    ):
        fields.append((_CONTENT_LENGTH, str(len(response.body)).encode("ascii")))
    if alt_svc is not None:
        fields.append((b"alt-svc", alt_svc))
    fields.append((b"server", server_name))
    return fields


def h2_fields(
    response: Response, server_name: bytes, http_date: bytes, alt_svc: bytes | None = None
) -> tuple[tuple[bytes, bytes], ...]:
    cached = response._h2_fields
    if cached is not None:
        old_date, old_name, old_alt_svc, built = cached
        same_server = old_name is server_name and old_alt_svc is alt_svc
        if old_date is http_date and same_server:
            return built
        # A new second: only the date changed (the list ends with server, then date).
        # (Another server in this process, with its own alt-svc or name, builds anew.)
        if same_server:
            built = (*built[:-1], (b"date", http_date))
            response._h2_fields = (http_date, server_name, alt_svc, built)
            return built
    fields = _fixed_fields(response, server_name, alt_svc)
    fields.append((b"date", http_date))
    built = tuple(fields)
    response._h2_fields = (http_date, server_name, alt_svc, built)
    return built


def h1_head(
    response: Response, server_name: bytes, http_date: bytes, alt_svc: bytes | None = None
) -> ResponseHead:
    cached = response._h1_head
    if cached is not None:
        old_date, old_name, old_alt_svc, head = cached
        same_server = old_name is server_name and old_alt_svc is alt_svc
        if old_date is http_date and same_server:
            return head
        # A new second: the head ends with "server: NAME\r\ndate: DATE\r\n\r\n", and
        # only the date changed, so swap it in rather than validate and join every field
        # again. The date is no framing field: the head's facts stay as they are.
        data = head.data
        tail = b"server: %s\r\ndate: %s\r\n\r\n" % (server_name, old_date)
        if same_server and data.endswith(tail):
            data = b"%sdate: %s\r\n\r\n" % (data[: len(data) - len(old_date) - 10], http_date)
            head = head.with_data(data)
            response._h1_head = (http_date, server_name, alt_svc, head)
            return head
    fields = _fixed_fields(response, server_name, alt_svc)
    fields.append((b"date", http_date))
    head = serialize_head(response.status, fields)
    response._h1_head = (http_date, server_name, alt_svc, head)
    return head


def error_response(status: int, message: str) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(
        status,
        [(b"content-type", b"application/json; charset=utf-8"), (b"cache-control", b"no-store")],
        body,
    )


INTERNAL_ERROR = error_response(500, "internal server error")
# An ASGI or WSGI app that did not start its answer within --response-timeout.
APP_TOO_SLOW = error_response(503, "the app did not answer in time")
BODY_TOO_LARGE = error_response(413, "request body too large")
