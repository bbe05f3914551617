"""The pool-wide pace, tested on its schedule with an injected clock (no timing assertions)."""

from __future__ import annotations

import itertools

import pytest

from jobs.smtp import RateLimiter
from jobs.smtp.rate import SharedRateLimiter


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


class SharedSchedule:
    """The run-wide schedule as the ledger keeps it: blocks of slots handed out in turn."""

    def __init__(self, clock: FakeClock, interval: float) -> None:
        self.clock = clock
        self.interval = interval
        self.next = clock.now
        self.blocks: list[int] = []

    async def reserve(self, slots: int) -> float:
        self.blocks.append(slots)
        start = max(self.next, self.clock.now)
        self.next = start + slots * self.interval
        return start - self.clock.now


async def test_processes_sharing_one_schedule_never_send_faster_than_the_rate() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    schedule = SharedSchedule(clock, 0.05)
    first = SharedRateLimiter(20, schedule.reserve, clock=clock, sleep=sleep)
    second = SharedRateLimiter(20, schedule.reserve, clock=clock, sleep=sleep)
    sent: list[float] = []
    for limiter in (first, second, first, second, first, second):
        await limiter.wait()
        sent.append(clock.now)
    # blocks of 2 slots (0.1 s at 20/s) from one schedule: the two never overlap, so the
    # messages of both together are at least one interval apart
    assert set(schedule.blocks) == {2}
    assert min(b - a for a, b in itertools.pairwise(sent)) >= 0.05 - 1e-9


async def test_a_slot_missed_by_half_an_interval_is_dropped_not_spent_in_a_burst() -> None:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    schedule = SharedSchedule(clock, 0.1)
    limiter = SharedRateLimiter(10, schedule.reserve, block_seconds=0.5, clock=clock, sleep=sleep)
    await limiter.wait()  # books slots at +0, +0.1, ..., +0.4 and takes the first
    clock.now += 0.26  # this process stalled: the slots at +0.1 and +0.2 are gone
    await limiter.wait()
    assert clock.now == pytest.approx(100.3)  # the next slot still ahead, not a late one
    assert schedule.blocks == [5]
