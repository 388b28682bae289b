"""QuicTimer: the clock aioquic is fed and its one loop timer, on a fake clock.

The loop is a real asyncio loop (its handles are what the timer arms); time is a fake clock,
and a handle is run by hand at the moment a loop would run it, early or late.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aioquic.h3.connection import H3_ALPN
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from h2books.quic_timer import QuicTimer


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def connecting_client(now: float) -> QuicConnection:
    """A real aioquic client that has sent its Initial: it has a loss-detection timer."""
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN))
    quic.connect(("127.0.0.1", 4433), now=now)
    quic.datagrams_to_send(now=now)
    return quic


def run_armed_handle(timer: QuicTimer) -> None:
    """What the loop does when the timer's handle is due (uvloop may do it early)."""
    handle = timer._handle
    assert handle is not None and not handle.cancelled()
    handle._run()


def test_arm_follows_the_connection_deadline_with_one_handle(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock = FakeClock(100.0)
    quic = connecting_client(clock.now)
    timer = QuicTimer(loop, quic, lambda now: None, clock)
    timer.arm()
    deadline = quic.get_timer()
    assert deadline is not None and deadline > clock.now
    assert timer.deadline == deadline
    handle = timer._handle
    assert handle is not None and handle.when() == deadline
    timer.arm()  # the deadline did not move: the same handle
    assert timer._handle is handle and not handle.cancelled()
    timer.cancel()
    assert handle.cancelled() and timer.deadline is None


def _armed(loop: asyncio.AbstractEventLoop) -> tuple[FakeClock, QuicTimer, list[float], float]:
    """A timer armed for a connecting client on a fake clock: (clock, timer, the times
    it expired at, its deadline)."""
    clock = FakeClock(100.0)
    quic = connecting_client(clock.now)
    seen: list[float] = []
    timer = QuicTimer(loop, quic, seen.append, clock)
    timer.arm()
    assert timer.deadline is not None
    return clock, timer, seen, timer.deadline


def test_a_timer_run_early_is_taken_as_due_and_time_never_goes_back(
    loop: asyncio.AbstractEventLoop,
) -> None:
    clock, timer, seen, deadline = _armed(loop)
    # uvloop rounds a delay to whole milliseconds: the handle runs 0.4 ms early.
    clock.now = deadline - 0.0004
    run_armed_handle(timer)
    # Exactly one expiry, at the deadline: aioquic is not asked early (which did nothing,
    # set the same deadline again and spun until the millisecond turned).
    assert seen == [deadline]
    assert timer.now() == deadline  # the clock has not caught up: no earlier than that
    clock.now = deadline + 0.001
    assert timer.now() == deadline + 0.001


def test_a_timer_run_late_gets_the_clock_time(loop: asyncio.AbstractEventLoop) -> None:
    clock, timer, seen, deadline = _armed(loop)
    clock.now = deadline + 0.0007  # asyncio rounds its wait up to the millisecond
    run_armed_handle(timer)
    assert seen == [deadline + 0.0007]
    assert timer.deadline is None  # fired: the expiry re-arms it


def test_the_expiry_drives_aioquic_retransmission(loop: asyncio.AbstractEventLoop) -> None:
    """With no answer, the expiry at the probe deadline makes aioquic send its Initial again."""
    clock = FakeClock(100.0)
    quic = connecting_client(clock.now)

    def expire(now: float) -> None:
        quic.handle_timer(now)
        sent.extend(quic.datagrams_to_send(now=timer.now()))
        timer.arm()

    sent: list[tuple[bytes, object]] = []
    timer = QuicTimer(loop, quic, expire, clock)
    timer.arm()
    first = timer.deadline
    assert first is not None
    clock.now = first - 0.0003  # early, as uvloop runs it
    run_armed_handle(timer)
    assert sent, "the probe went out at the first expiry"
    assert timer.deadline is not None and timer.deadline > first
