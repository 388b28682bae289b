"""H1ClientConnection -> H1ServerConnection -> H1ClientConnection, through real bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from h2books.protocol.h1 import (
    H1ClientConnection,
    H1Config,
    H1ServerConnection,
    ResponseReceived,
    serialize_head,
)
from tests.protocol.h1.folding import whole_requests

from .strategies import bodies, fields, methods, targets

exchanges = st.lists(
    st.tuples(
        methods,
        targets,
        fields,
        bodies,
        st.booleans(),  # chunked request
        st.sampled_from([200, 201, 204, 304, 404, 500]),
        fields,
        bodies,
        st.sampled_from(["whole", "stream-length", "stream-chunked"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150)
@given(exchanges, st.integers(min_value=1, max_value=50))
def test_round_trip(exchanges: list[tuple], step: int) -> None:  # type: ignore[type-arg]
    client = H1ClientConnection()
    server = H1ServerConnection(H1Config(), 0.0)
    for method, target, request_fields, request_body, chunked, *_ in exchanges:
        extra = [(b"transfer-encoding", b"chunked")] if chunked else []
        client.send_request(
            method, target, [(b"host", b"example.com"), *request_fields, *extra], request_body
        )
    wire = client.data_to_send()
    events: list[object] = []
    for i in range(0, len(wire), step):  # pipelined, delivered in arbitrary pieces
        events += server.receive_data(wire[i : i + step], 0.0)
    requests = whole_requests(events)
    assert len(requests) == len(exchanges)
    for request, (method, target, request_fields, request_body, _chunked, *_) in zip(
        requests, exchanges, strict=True
    ):
        assert (request.method, request.target, request.body) == (method, target, request_body)
        sent = [(n.lower(), v) for n, v in request_fields]
        assert request.headers[1 : 1 + len(sent)] == sent
        assert request.host == b"example.com"

    for request, (*_, status, response_fields, response_body, mode) in zip(
        requests, exchanges, strict=True
    ):
        if mode == "whole":
            server.send_response(serialize_head(status, response_fields), response_body)
        else:
            length = [(b"content-length", b"%d" % len(response_body))]
            head_fields = response_fields + (length if mode == "stream-length" else [])
            if status in (204, 304):
                head_fields = response_fields
            server.start_response(serialize_head(status, head_fields))
            for i in range(0, len(response_body), 7):
                server.send_body(response_body[i : i + 7])
            server.end_response()
        assert request.keep_alive
    assert not server.must_close

    wire = server.data_to_send()
    responses: list[ResponseReceived] = []
    for i in range(0, len(wire), step):
        responses += [
            e
            for e in client.receive_data(wire[i : i + step], 0.0)
            if isinstance(e, ResponseReceived)
        ]
    assert len(responses) == len(exchanges)
    for request, response, (*_, status, response_fields, response_body, _mode) in zip(
        requests, responses, exchanges, strict=True
    ):
        assert response.status == status
        no_body = request.method == b"HEAD" or status in (204, 304)
        assert response.body == (b"" if no_body else response_body)
        sent = [(n.lower(), v) for n, v in response_fields]
        assert response.headers[: len(sent)] == sent
        assert response.keep_alive
    assert client.unanswered == 0
