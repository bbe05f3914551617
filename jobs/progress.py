"""A progress line for long work, shown only to a person at a terminal.

cron and scripts read stdout, so progress goes to stderr, and only when stderr is a terminal:
redirected output carries nothing but the summary.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from jobs.i18n import _, tr

__all__ = ["Progress"]


class Progress:
    """Counts work items and redraws one stderr line at most ten times a second."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = _(label)  # callers mark it with N_
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._enabled:
            now = time.monotonic()
            if now - self._last_draw >= 0.1:
                self._last_draw = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            pct = 100.0 * self.done / self.total
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            text = "\r" + tr(
                "{label}: {done:,}/{total:,} ({pct:5.1f}%) {rate:,.0f}/s, about {left:,.0f}s left ",
                label=self.label,
                done=self.done,
                total=self.total,
                pct=pct,
                rate=rate,
                left=left,
            )
        else:
            text = "\r" + tr(
                "{label}: {done:,} ({rate:,.0f}/s) ", label=self.label, done=self.done, rate=rate
            )
        self._stream.write(text)
        self._stream.flush()

    def close(self) -> None:
        if self._enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
