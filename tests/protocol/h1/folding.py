"""Folding streamed request bodies back into their requests (shared by h1 tests).

The server core delivers a head as soon as it is complete and its body in parts
(`BodyReceived`, then `BodyEnded`) unless the whole body came with it. Tests about
something else than that split compare the requests as if delivered whole.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from h2books.protocol.h1 import BodyEnded, BodyReceived, RequestReceived


def fold_bodies(events: Iterable[object]) -> list[object]:
    """``events`` with each streamed body folded into a copy of its `RequestReceived`
    (body and trailers filled in); a body not ended yet leaves its head with body None."""
    folded: list[object] = []
    current: RequestReceived | None = None
    parts: list[bytes] = []
    for event in events:
        if isinstance(event, RequestReceived) and event.body is None:
            current = copy.copy(event)
            parts = []
            folded.append(current)
        elif isinstance(event, BodyReceived):
            assert current is not None and event.data, event
            parts.append(event.data)
        elif isinstance(event, BodyEnded):
            assert current is not None
            current.body = b"".join(parts)
            current.trailers = event.trailers
            current = None
        else:
            folded.append(event)
    return folded


def whole_requests(events: Iterable[object]) -> list[RequestReceived]:
    """The requests among ``events`` whose body is complete, folded."""
    return [e for e in fold_bodies(events) if isinstance(e, RequestReceived) and e.body is not None]
