"""The sending pipeline of one pass: claim → compose → send (with retries) → record.

Three kinds of asyncio tasks share one event loop:
- a claimer takes small batches of deliveries from the ledger (each claim committed before its
  messages go out, so a crash leaves them `sending` for the next pass to find);
- `transport.concurrency` senders (several per connection, so that a pipelining connection
  always has a next message to group with) each compose a message and send it with retries;
- a committer writes confirmed results in short batched transactions, at most `COMMIT_INTERVAL`
  after the server confirmed them (SPEC §7: at most the last 50 ms can be sent twice after a
  kill -9). Progress is the ledger itself: nothing is counted in memory and written later.

Database calls are blocking (SQLAlchemy), so they run on one dedicated thread: the loop keeps
the SMTP connections busy meanwhile, and a single writer thread keeps SQLite free of lock fights.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from jobs.config.settings import SmtpSettings
from jobs.ledger.queue import claim, record, release
from jobs.ledger.values import ClaimedDelivery, DeliveryResult, DeliveryStatus, RunRecord
from jobs.messages.compose import Composer, envelope_sender
from jobs.progress import Progress
from jobs.smtp.envelope import SESSION_PHASES, Envelope, FinalResult, FinalStatus
from jobs.smtp.retry import send_with_retry
from jobs.smtp.transport import NotSent, Transport

__all__ = ["COMMIT_INTERVAL", "PassReport", "send_pass"]

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 0.05  # seconds: the oldest confirmed-but-uncommitted result (§7)
_STATUS = {
    FinalStatus.SENT: DeliveryStatus.SENT,
    FinalStatus.DEFERRED: DeliveryStatus.DEFERRED,
    FinalStatus.FAILED: DeliveryStatus.FAILED,
}
_T = TypeVar("_T")


@dataclass
class PassReport:
    """What one pass did (the run summary adds the ledger's totals)."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    possible_duplicates: int = 0  # failures after DATA, then resent (same Message-ID)
    hard_bounces: int = 0
    seconds: float = 0.0
    first_errors: list[str] = field(default_factory=list)
    relay_down: str = ""  # why the pass stopped early because the relay itself failed
    charset_fallbacks: list[str] = field(default_factory=list)  # delivery addresses

    @property
    def attempted(self) -> int:
        return self.sent + self.deferred + self.failed

    @property
    def rate(self) -> float:
        return self.attempted / self.seconds if self.seconds > 0 else 0.0


def _reply(final: FinalResult) -> tuple[int | None, str]:
    """The server's last word on the delivery's one recipient (§5 last_smtp_code, last_error).

    The recipient's own reply, not the transaction's: a 421 at RCPT also ends the session, and
    the transaction then only knows "connection closed" while the recipient keeps the 421.
    """
    if len(final.recipients) == 1:
        recipient = final.recipients[0]
        return recipient.code, recipient.text
    return final.code, final.text


def _possible_duplicate(claimed: ClaimedDelivery, final: FinalResult) -> bool:
    """This send may repeat one the server already kept (same Message-ID either way)."""
    # an earlier run ended this delivery with its body sent and no reply: sending it again now
    # may be the second copy, like a retry after a failure past DATA within this run
    return final.possible_duplicate or (claimed.outcome_unknown and final.attempts > 0)


def _result(claimed: ClaimedDelivery, final: FinalResult) -> DeliveryResult:
    status = _STATUS[final.status]
    code, text = _reply(final)
    return DeliveryResult(
        claim=claimed,
        status=status,
        attempts=final.attempts,
        smtp_code=code,
        smtp_text=text or None,
        sent_at=datetime.now(UTC) if status is DeliveryStatus.SENT else None,
        possible_duplicate=_possible_duplicate(claimed, final),
        outcome_unknown=final.unknown_outcome,
        hard_bounces=final.hard_bounces,
    )


async def send_pass(
    engine: sa.Engine,
    run: RunRecord,
    pass_no: int,
    composer: Composer,
    transport: Transport,
    smtp: SmtpSettings,
    *,
    worker_id: str,
    total: int | None = None,
    progress: bool = False,
    claim_size: int | None = None,
) -> PassReport:
    """Send every delivery the pass can claim; returns when none is left to claim.

    When it stops early (a relay setup error, the ledger failing, Ctrl-C), results the server
    confirmed are still committed and deliveries claimed but never handed to the server go back
    to `pending`; only those that were on their way stay `sending` for the next pass to resend.
    """
    report = PassReport()
    started = time.perf_counter()
    sender = envelope_sender(composer.message.from_)
    connections = smtp.connections
    senders_count = max(connections, transport.concurrency)
    batch = claim_size or max(8, min(200, senders_count * 2, connections * 8))
    work: asyncio.Queue[ClaimedDelivery | None] = asyncio.Queue(maxsize=batch * 2)
    confirmed: list[DeliveryResult] = []
    # Claimed but not yet handed to the transport: certainly not sent, so given back on a stop.
    # Filled on the ledger thread as each claim commits, so a claim that finishes after its
    # claimer was cancelled is not forgotten.
    held: dict[int, ClaimedDelivery] = {}
    done_sending = asyncio.Event()
    # Consecutive deliveries deferred because the session itself failed (connect, TLS, AUTH):
    # when every connection has seen it, the relay is down and every further delivery would
    # spend all its attempts the same way. The pass stops; the rest stays pending (exit 3).
    session_failures = 0
    bar = Progress("sending", total) if progress else None
    db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")
    loop = asyncio.get_running_loop()

    async def in_db(fn: Callable[..., _T], *args: Any) -> _T:
        return await loop.run_in_executor(db, lambda: fn(*args))

    def claim_and_hold() -> list[ClaimedDelivery]:
        claims = claim(engine, run, pass_no, worker_id, batch)
        held.update((c.delivery_id, c) for c in claims)
        return claims

    def release_held() -> int:
        return release(engine, list(held.values()))

    async def claimer() -> None:
        while not report.relay_down and (claims := await in_db(claim_and_hold)):
            for c in claims:
                await work.put(c)
        for _ in range(senders_count):
            await work.put(None)

    async def send_one(c: ClaimedDelivery) -> None:
        # §7: the Message-ID frozen at resolution, even if message_id_domain changed since
        composed = composer.compose(c.delivery, message_id=c.message_id)
        if composed.fallback:
            report.charset_fallbacks.append(c.delivery.email)
        envelope = Envelope(
            sender=sender,
            recipients=(c.delivery.email,),
            data=composed.data,
            message_id=c.message_id,
            key=c.delivery.key,
            crlf_form=True,  # the composer's bytes are in wire line form already
        )
        held.pop(c.delivery_id, None)  # from here on the message may reach the server
        try:
            final = await send_with_retry(
                transport,
                envelope,
                max_attempts=smtp.max_attempts,
                backoff_initial=smtp.backoff_initial_seconds,
                backoff_max=smtp.backoff_max_seconds,
            )
        except NotSent:
            held[c.delivery_id] = c  # stopped while queued in the transport: given back
            raise
        result = _result(c, final)
        confirmed.append(result)
        if result.status is DeliveryStatus.SENT:
            report.sent += 1
        elif result.status is DeliveryStatus.DEFERRED:
            report.deferred += 1
        else:
            report.failed += 1
        if result.status is not DeliveryStatus.SENT and len(report.first_errors) < 5:
            reply = " ".join(str(part) for part in (result.smtp_code, result.smtp_text) if part)
            report.first_errors.append(
                f"{c.delivery.email}: {result.status.value} after {final.attempts} attempt(s):"
                f" {reply}".rstrip()
            )
        report.possible_duplicates += int(result.possible_duplicate)
        report.hard_bounces += len(final.hard_bounces)
        nonlocal session_failures
        if result.status is DeliveryStatus.DEFERRED and final.phase in SESSION_PHASES:
            session_failures += 1
            if session_failures >= connections and not report.relay_down:
                report.relay_down = (
                    f"the relay failed {session_failures} deliveries in a row before any "
                    f"message could be sent ({final.text}); stopped this "
                    "pass, the rest stays pending for the next run"
                )
        elif result.status is not DeliveryStatus.DEFERRED:
            session_failures = 0
        if bar is not None:
            bar.advance()

    async def worker() -> None:
        while (c := await work.get()) is not None:
            if not report.relay_down:  # else it stays held and is given back below
                await send_one(c)

    async def committer() -> None:
        # Fixed cadence: each tick is due COMMIT_INTERVAL after the previous one started, not
        # after it finished, so the time a commit takes does not add to the age of what waits.
        due = loop.time()
        while not (done_sending.is_set() and not confirmed):
            due = max(due + COMMIT_INTERVAL, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done_sending.wait(), due - loop.time())
            if confirmed:
                batch_results = confirmed[:]
                del confirmed[: len(batch_results)]
                await in_db(record, engine, batch_results)

    async def sending(tasks: list[asyncio.Task[None]]) -> None:
        try:
            await asyncio.gather(*tasks)
        finally:
            done_sending.set()

    commit_task = asyncio.create_task(committer(), name="committer")
    senders = [asyncio.create_task(claimer(), name="claimer")]
    senders += [asyncio.create_task(worker(), name=f"sender-{i}") for i in range(senders_count)]
    sending_task = asyncio.create_task(sending(senders), name="sending")
    try:
        # The committer is awaited alongside the senders: if the ledger stops taking results,
        # sending stops too instead of going on with nothing recorded. Shielded, so that a
        # cancellation (Ctrl-C) stops the senders but still commits what was confirmed.
        await asyncio.gather(sending_task, asyncio.shield(commit_task))
    except BaseException:
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, sending_task, return_exceptions=True)
        done_sending.set()
        await asyncio.gather(commit_task, return_exceptions=True)  # what was confirmed
        try:
            # queued after any claim still running on the ledger thread, so it sees its rows
            await in_db(release_held)
        except sa.exc.SQLAlchemyError:
            # the error being raised is the one to report; the next pass resets these anyway
            log.warning("could not give back %d claimed deliveries", len(held), exc_info=True)
        raise
    else:
        if report.relay_down:
            await in_db(release_held)
    finally:
        db.shutdown(wait=True)
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - started
    return report
