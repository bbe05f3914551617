"""The narrow interface between the sender stage and SMTP (STYLE: `Transport(Protocol)`).

The sender never sees aiosmtplib; tests and the retry loop depend on this alone.
"""

from __future__ import annotations

from typing import Protocol

from jobs.smtp.envelope import Envelope, SendResult

__all__ = ["Transport"]


class Transport(Protocol):
    """Something that makes one attempt to deliver an envelope."""

    async def send(self, envelope: Envelope) -> SendResult:
        """One attempt; failures come back as a result, only setup errors raise."""
        ...
