"""A pool-wide pace for `smtp.rate_per_second` (SPEC §7), applied when a message is sent.

Each send reserves the next free slot, `1 / rate` seconds after the previous one, so that the
whole pool never exceeds the rate however many connections it holds. There is no burst: a quiet
spell does not bank credit that a later flood could spend, which is what relays with per-second
limits expect. The clock is a parameter so that the schedule is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter", "SharedRateLimiter"]


class RateLimiter:
    """Paced slots at `rate_per_second`; 0 (or less) turns pacing off."""

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = float("-inf")

    @property
    def paced(self) -> bool:
        """Whether `wait` can ever sleep: the pool skips the call (a coroutine a message) if not."""
        return self._interval != 0.0

    def reserve(self) -> float:
        """Take the next slot; return how long the caller must wait before sending."""
        if self._interval == 0.0:
            return 0.0
        now = self._clock()
        start = max(now, self._next)
        self._next = start + self._interval
        return start - now

    async def wait(self) -> None:
        """Reserve a slot and sleep until it starts."""
        delay = self.reserve()
        if delay > 0:
            await self._sleep(delay)


class SharedRateLimiter(RateLimiter):
    """Pacing shared by every process of a run (SPEC §9: the rate is the run's total).

    Slots come in small blocks from `reserve(count)`, which books `count` consecutive slots
    of the run-wide schedule (kept in the ledger by the caller) and returns the seconds until
    the first. A block covers about `block_seconds` of sending, so the schedule is asked a few
    times a second at most. A slot whose time has passed by more than one interval (this
    process was slow to use it by half an interval) is dropped, never spent late in a burst.
    """

    def __init__(
        self,
        rate_per_second: float,
        reserve: Callable[[int], Awaitable[float]],
        *,
        block_seconds: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(rate_per_second, clock=clock, sleep=sleep)
        self._reserve_block = reserve
        self._block = max(1, int(rate_per_second * block_seconds)) if rate_per_second > 0 else 0
        self._slots: list[float] = []  # a heap of reserved slot times on `clock`

    async def wait(self) -> None:
        """Take the earliest reserved slot (booking a block when none is left) and sleep to it."""
        if self._interval == 0.0:
            return
        while True:
            now = self._clock()
            while self._slots and self._slots[0] < now - self._interval / 2:
                heapq.heappop(self._slots)  # missed: lost rather than spent in a burst
            if self._slots:
                break
            # the delay counts from when the block was asked for, not from its answer
            delay = await self._reserve_block(self._block)
            first = now + delay
            for i in range(self._block):
                heapq.heappush(self._slots, first + i * self._interval)
        slot = heapq.heappop(self._slots)
        if slot > now:
            await self._sleep(slot - now)
