"""Sending over SMTP (SPEC §7, §9): a pool of persistent connections, one classifier, retries.

The sender stage builds an `Envelope` per delivery, calls `send_with_retry(pool, envelope, ...)`
from `pool.concurrency` tasks and records the `FinalResult`; it never touches aiosmtplib.

Owns: connections to the relay, TLS, AUTH, PIPELINING (RFC 2920), pacing, reply classification
and the retry policy. aiosmtplib opens each session (session.py); the message stream then runs
on our own reply-queueing protocol (wire.py), each message read reply by reply by one
`Transaction` (transaction.py) that both the pipelined and the one-at-a-time dialogue share.
Must not import: `jobs.source`, `jobs.resolution`, `jobs.messages`, `jobs.ledger`,
`jobs.delivery`, `jobs.reports` (it moves bytes; it knows nothing of campaigns or the ledger).
"""

from __future__ import annotations

from jobs.smtp.classify import Verdict, classify
from jobs.smtp.envelope import (
    SESSION_PHASES,
    Envelope,
    FinalResult,
    FinalStatus,
    Outcome,
    Phase,
    RecipientResult,
    SendResult,
)
from jobs.smtp.errors import SmtpSetupError
from jobs.smtp.pool import SmtpPool
from jobs.smtp.rate import RateLimiter
from jobs.smtp.retry import send_with_retry
from jobs.smtp.transport import NotSent, Transport

__all__ = [
    "SESSION_PHASES",
    "Envelope",
    "FinalResult",
    "FinalStatus",
    "NotSent",
    "Outcome",
    "Phase",
    "RateLimiter",
    "RecipientResult",
    "SendResult",
    "SmtpPool",
    "SmtpSetupError",
    "Transport",
    "Verdict",
    "classify",
    "send_with_retry",
]
