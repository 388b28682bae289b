"""SETTINGS validation, the peer's values, and ours waiting for their ACK."""

from __future__ import annotations

import pytest

from h2books.protocol.h2 import ErrorCode, H2ConnectionError
from h2books.protocol.h2.settings import (
    UNLIMITED,
    LocalSettings,
    PeerSettings,
    SettingCode,
    validate_setting,
)


@pytest.mark.parametrize(
    ("ident", "value", "code"),
    [
        (SettingCode.ENABLE_PUSH, 2, ErrorCode.PROTOCOL_ERROR),
        (SettingCode.ENABLE_CONNECT_PROTOCOL, 7, ErrorCode.PROTOCOL_ERROR),
        (SettingCode.NO_RFC7540_PRIORITIES, 2, ErrorCode.PROTOCOL_ERROR),
        (SettingCode.INITIAL_WINDOW_SIZE, 2**31, ErrorCode.FLOW_CONTROL_ERROR),
        (SettingCode.MAX_FRAME_SIZE, 16383, ErrorCode.PROTOCOL_ERROR),
        (SettingCode.MAX_FRAME_SIZE, 2**24, ErrorCode.PROTOCOL_ERROR),
    ],
)
def test_invalid_values(ident: int, value: int, code: ErrorCode) -> None:
    with pytest.raises(H2ConnectionError) as info:
        validate_setting(ident, value)
    assert info.value.error_code == code


@pytest.mark.parametrize(
    ("ident", "value"),
    [
        (SettingCode.ENABLE_PUSH, 0),
        (SettingCode.ENABLE_PUSH, 1),
        (SettingCode.INITIAL_WINDOW_SIZE, 2**31 - 1),
        (SettingCode.MAX_FRAME_SIZE, 16384),
        (SettingCode.MAX_FRAME_SIZE, 2**24 - 1),
        (SettingCode.HEADER_TABLE_SIZE, 2**32 - 1),
        (0xFFFF, 2**32 - 1),
    ],
)
def test_valid_values(ident: int, value: int) -> None:
    validate_setting(ident, value)


def test_peer_settings_defaults_and_last_value_wins() -> None:
    peer = PeerSettings()
    assert peer.max_concurrent_streams == UNLIMITED and peer.initial_window_size == 65535
    changes = peer.apply(
        [(4, 100), (5, 20000), (4, 7), (0x99, 5), (3, 10), (1, 0), (6, 1000), (8, 1)],
        peer_is_server=False,
    )
    assert changes == {4: 7, 5: 20000, 0x99: 5, 3: 10, 1: 0, 6: 1000, 8: 1}
    assert (
        peer.initial_window_size,
        peer.max_frame_size,
        peer.max_concurrent_streams,
        peer.header_table_size,
        peer.max_header_list_size,
        peer.enable_connect_protocol,
    ) == (7, 20000, 10, 0, 1000, 1)


def test_server_cannot_enable_push() -> None:
    peer = PeerSettings()
    peer.apply([(2, 0)], peer_is_server=True)
    peer.apply([(2, 1)], peer_is_server=False)
    with pytest.raises(H2ConnectionError):
        peer.apply([(2, 1)], peer_is_server=True)


def test_local_settings_apply_in_order_on_ack() -> None:
    local = LocalSettings()
    assert local.send({4: 1000, 3: 50}) == [(4, 1000), (3, 50)]
    local.send({4: 2000})
    assert local.acknowledged[4] == 65535
    assert local.on_ack() == {4: 1000, 3: 50}
    assert local.on_ack() == {4: 2000}
    assert local.on_ack() is None
    local.send({4: 2000})
    assert local.on_ack() == {}
    with pytest.raises(H2ConnectionError):
        local.send({5: 1})


def test_name_of() -> None:
    assert SettingCode.name_of(4) == "INITIAL_WINDOW_SIZE"
    assert SettingCode.name_of(0x77) == "UNKNOWN_0x77"


def test_connections_whose_settings_agree_share_one_mapping_of_them() -> None:
    a, b = LocalSettings(), LocalSettings()
    assert a.acknowledged is b.acknowledged
    for local in (a, b):
        local.send({3: 100, 4: 1 << 20})
        local.on_ack()
    assert a.acknowledged is b.acknowledged and a.acknowledged[3] == 100
    b.send({3: 50})
    b.on_ack()
    assert b.acknowledged[3] == 50 and a.acknowledged[3] == 100  # never changed in place
