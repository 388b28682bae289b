"""Client errors: one line each, and copyable (one copy per request a failure cuts off)."""

from __future__ import annotations

import copy
import pickle

from h2books.client import (
    ClientError,
    ConnectError,
    GoAwayError,
    ProtocolError,
    RemoteClosedError,
    RequestTimeout,
    StreamResetError,
    TLSError,
)


def test_errors_survive_copy_and_pickle() -> None:
    errors: list[ClientError] = [
        ConnectError("refused"),
        TLSError("unknown CA"),
        ProtocolError("garbage"),
        RemoteClosedError("closed"),
        RequestTimeout("slow"),
        GoAwayError("goaway", 11, 7),
        StreamResetError("reset", 8),
    ]
    for error in errors:
        for clone in (copy.copy(error), pickle.loads(pickle.dumps(error))):
            assert type(clone) is type(error)
            assert str(clone) == str(error)
            assert vars(clone) == vars(error)


def test_error_details() -> None:
    goaway = GoAwayError("x", 11, 7)
    assert (goaway.error_code, goaway.last_stream_id) == (11, 7)
    assert StreamResetError("y", 8).error_code == 8
    assert isinstance(RequestTimeout("z"), TimeoutError)
