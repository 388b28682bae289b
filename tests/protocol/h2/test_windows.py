"""Receive-window accounting and the half-window replenish policy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from h2books.protocol.h2.windows import ReceiveWindow


def consume(window: ReceiveWindow, size: int) -> bool:
    """What the connection does with a DATA frame: refuse what breaks the window."""
    if size > window.available:
        return False
    window.available -= size
    return True


def test_consume_and_release_at_half() -> None:
    window = ReceiveWindow(1000)
    assert consume(window, 600)
    assert not consume(window, 401)
    assert window.available == 400 and window.outstanding == 600
    assert window.release(499) == 0
    assert window.release(1) == 500
    assert window.available == 900 and window.outstanding == 100
    assert window.release(10**6) == 0  # clamped to the 100 outstanding
    assert window.unannounced == 100


def test_release_nothing_outstanding() -> None:
    window = ReceiveWindow(100)
    assert window.release(50) == 0
    assert window.release(-5) == 0


def test_tiny_windows_announce_at_once() -> None:
    window = ReceiveWindow(1)
    assert consume(window, 1)
    assert window.release(1) == 1
    zero = ReceiveWindow(0)
    assert not consume(zero, 1)
    assert consume(zero, 0)


def test_resize_keeps_outstanding_and_may_go_negative() -> None:
    window = ReceiveWindow(1000)
    consume(window, 800)
    window.release(100)
    window.resize(100)
    assert window.available == -700 and window.outstanding == 700
    assert not consume(window, 1)
    window.resize(5000)
    assert window.available == 4200


@given(st.integers(1, 2**20), st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000))))
def test_never_more_than_target_and_all_credit_returns(
    target: int, steps: list[tuple[int, int]]
) -> None:
    window = ReceiveWindow(target)
    announced = 0
    consumed = 0
    for receive, release in steps:
        if consume(window, receive):
            consumed += receive
        announced += window.release(release)
        assert 0 <= window.outstanding <= target
        assert window.available + window.outstanding + window.unannounced == target
        assert window.available <= target
    # The application consumes everything left: the peer's window is full again
    # except for less than half of it kept back.
    announced += window.release(window.outstanding)
    assert window.unannounced * 2 < target or window.unannounced == 0
    assert announced + window.unannounced == consumed
