"""The pool-wide pace, tested on its schedule with an injected clock (no timing assertions)."""

from __future__ import annotations

import pytest

from jobs.smtp import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slots_are_spaced_by_the_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, clock=clock)
    delays = [limiter.reserve() for _ in range(10)]
    assert delays == pytest.approx([i * 0.05 for i in range(10)])


def test_quiet_time_is_not_banked_as_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    limiter.reserve()
    clock.now += 60  # a long pause
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(0.1)


def test_time_passing_shortens_the_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    limiter.reserve()
    limiter.reserve()  # slot at +0.1
    clock.now += 0.15
    assert limiter.reserve() == pytest.approx(0.05)  # slot at +0.2


def test_zero_rate_never_waits() -> None:
    limiter = RateLimiter(0, clock=FakeClock())
    assert [limiter.reserve() for _ in range(100)] == [0.0] * 100


async def test_wait_sleeps_for_the_reserved_delay() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(4, clock=FakeClock(), sleep=sleep)
    for _ in range(3):
        await limiter.wait()
    assert slept == pytest.approx([0.25, 0.5])
