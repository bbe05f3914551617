"""The narrow interface between the sender stage and SMTP (STYLE: `Transport(Protocol)`).

The sender never sees aiosmtplib; tests and the retry loop depend on this alone.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from jobs.smtp.envelope import Envelope, SendResult

__all__ = ["NotSent", "Transport"]


class NotSent(asyncio.CancelledError):
    """`send` was cancelled before any byte of its envelope was written.

    Still a cancellation for everyone else; the sender catches it to give the delivery back
    (`pending`) instead of leaving it `sending` as if it had been on the wire (§7 counts those).
    """


class Transport(Protocol):
    """Something that makes one attempt to deliver an envelope.

    `send` may be called concurrently; `concurrency` says how many calls outstanding keep the
    transport busy (a pipelining pool groups the end of one message with the next one's
    commands, so it wants several per connection).
    """

    @property
    def concurrency(self) -> int:
        """How many `send` calls the caller should keep outstanding."""
        ...

    async def send(self, envelope: Envelope) -> SendResult:
        """One attempt; failures come back as a result, only setup errors raise."""
        ...
