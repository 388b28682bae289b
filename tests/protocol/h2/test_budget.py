"""Token buckets for flood protection."""

from __future__ import annotations

from h2books.protocol.h2.budget import TokenBucket


def test_capacity_then_refusal() -> None:
    bucket = TokenBucket(3, 1.0)
    assert [bucket.spend(0.0) for _ in range(4)] == [True, True, True, False]


def test_refill_with_time_and_cap() -> None:
    bucket = TokenBucket(2, 10.0)
    assert bucket.spend(0.0) and bucket.spend(0.0)
    assert not bucket.spend(0.0)
    assert bucket.spend(0.1)  # one token back after 0.1 s
    assert not bucket.spend(0.1)
    assert bucket.spend(100.0) and bucket.spend(100.0)  # capped at 2
    assert not bucket.spend(100.0)


def test_fractional_refill_accumulates() -> None:
    bucket = TokenBucket(1, 100.0)
    assert bucket.spend(0.0)
    results = [bucket.spend(0.005 * i) for i in range(1, 5)]  # half a token each step
    assert results == [False, True, False, True]


def test_time_spent_full_earns_nothing() -> None:
    bucket = TokenBucket(2, 1.0)
    assert bucket.spend(1000.0)  # full until now: the clock starts here
    assert bucket.spend(1000.0)
    assert not bucket.spend(1000.5)
    assert bucket.spend(1001.0)


def test_clock_going_backwards_is_harmless() -> None:
    bucket = TokenBucket(1, 1.0)
    assert bucket.spend(10.0)
    assert not bucket.spend(5.0)
    assert not bucket.spend(5.5)
