"""RFC 9112 section 6.3 body framing, as both roles apply it to what they receive."""

from __future__ import annotations

import pytest

from h2books.protocol.h1.errors import H1Error
from h2books.protocol.h1.framing import (
    CHUNKED,
    FIXED,
    NO_BODY,
    TUNNEL,
    UNTIL_CLOSE,
    body_framing,
    status_forbids_body,
)

TE = b"transfer-encoding"
CL = b"content-length"


def request(fields: dict[bytes, list[bytes]], version: bytes = b"1.1") -> tuple[int, int]:
    return body_framing(fields, version)


def response(
    fields: dict[bytes, list[bytes]], status: int = 200, method: bytes = b"GET"
) -> tuple[int, int]:
    return body_framing(fields, b"1.1", method, status)


def status_of(fields: dict[bytes, list[bytes]], **kwargs: object) -> int:
    with pytest.raises(H1Error) as info:
        body_framing(fields, b"1.1", **kwargs)  # type: ignore[arg-type]
    return info.value.status


# -- rule 1: HEAD, 1xx, 204, 304 --------------------------------------------------------------


@pytest.mark.parametrize("status", [100, 103, 199, 204, 304])
def test_bodyless_statuses_ignore_the_fields(status: int) -> None:
    assert status_forbids_body(status)
    assert response({CL: [b"5"]}, status) == (NO_BODY, 0)
    assert response({TE: [b"chunked"], CL: [b"5"]}, status) == (NO_BODY, 0)  # no error either


@pytest.mark.parametrize("status", [200, 201, 205, 300, 303, 404, 500])
def test_other_statuses_may_carry_a_body(status: int) -> None:
    assert not status_forbids_body(status)
    assert response({CL: [b"5"]}, status) == (FIXED, 5)


def test_answer_to_head_has_no_body() -> None:
    assert response({CL: [b"5"]}, 200, b"HEAD") == (NO_BODY, 0)
    assert response({TE: [b"chunked"]}, 200, b"HEAD") == (NO_BODY, 0)
    assert response({}, 200, b"HEAD") == (NO_BODY, 0)


# -- rule 2: CONNECT ------------------------------------------------------------------------


def test_2xx_to_connect_is_a_tunnel() -> None:
    assert response({CL: [b"5"]}, 200, b"CONNECT") == (TUNNEL, 0)
    assert response({}, 299, b"CONNECT") == (TUNNEL, 0)
    assert response({CL: [b"5"]}, 407, b"CONNECT") == (FIXED, 5)


# -- rules 3 and 4: transfer-encoding -------------------------------------------------------


def test_chunked() -> None:
    for values in ([b"chunked"], [b"CHUNKED"], [b" , chunked"], [b"", b"chunked"]):
        assert request({TE: values}) == (CHUNKED, 0)
        assert response({TE: values}) == (CHUNKED, 0)


def test_both_fields_are_rejected_in_both_roles() -> None:
    fields = {TE: [b"chunked"], CL: [b"3"]}
    assert status_of(fields) == 400
    assert status_of(fields, request_method=b"GET", status=200) == 400


def test_transfer_encoding_in_http10_is_faulty_framing() -> None:
    for kwargs in ({}, {"request_method": b"GET", "status": 200}):
        with pytest.raises(H1Error):
            body_framing({TE: [b"chunked"]}, b"1.0", **kwargs)  # type: ignore[arg-type]


def test_chunked_not_final() -> None:
    # A request has no length then; a response runs until the connection closes.
    for values in ([b"gzip"], [b"chunked, gzip"]):
        assert status_of({TE: values}) == 400
        assert response({TE: values}) == (UNTIL_CLOSE, 0)


@pytest.mark.parametrize(
    ("values", "status"),
    [([b"chunked", b"chunked"], 400), ([b"gzip", b"chunked"], 501), ([b""], 400), ([b","], 400)],
)
def test_unusable_codings(values: list[bytes], status: int) -> None:
    assert status_of({TE: values}) == status
    with pytest.raises(H1Error):
        response({TE: values})


# -- rules 5 to 8: content-length, or neither ----------------------------------------------


def test_content_length() -> None:
    assert request({CL: [b"10"]}) == (FIXED, 10)
    assert response({CL: [b"10"]}) == (FIXED, 10)
    assert request({CL: [b"0"]}) == (NO_BODY, 0)
    assert response({CL: [b"0"]}) == (NO_BODY, 0)


@pytest.mark.parametrize("values", [[b""], [b"1", b"1"], [b"1,1"], [b"+1"], [b"-1"], [b"0x10"]])
def test_invalid_content_length(values: list[bytes]) -> None:
    assert status_of({CL: values}) == 400
    with pytest.raises(H1Error):
        response({CL: values})


def test_neither_field() -> None:
    assert request({}) == (NO_BODY, 0)
    assert request({}, b"1.0") == (NO_BODY, 0)
    assert response({}) == (UNTIL_CLOSE, 0)
    assert response({b"connection": [b"keep-alive"]}) == (UNTIL_CLOSE, 0)
