"""A pool-wide pace for `smtp.rate_per_second` (SPEC §7), applied when a message is sent.

Each send reserves the next free slot, `1 / rate` seconds after the previous one, so that the
whole pool never exceeds the rate however many connections it holds. There is no burst: a quiet
spell does not bank credit that a later flood could spend, which is what relays with per-second
limits expect. The clock is a parameter so that the schedule is tested without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateLimiter"]


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
