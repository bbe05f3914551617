"""The sending pipeline of one pass: claim → compose → send (with retries) → record.

Three kinds of asyncio tasks share one event loop:
- a claimer takes small batches of deliveries from the ledger (each claim committed before its
  messages go out, so a crash leaves them `sending` for the next pass to find);
- `smtp.connections` senders each compose a message and send it through the pool with retries;
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
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from jobs.config.settings import SmtpSettings
from jobs.errors import Terminated
from jobs.ledger.queue import claim, record, release
from jobs.ledger.values import ClaimedDelivery, DeliveryResult, DeliveryStatus, RunRecord
from jobs.messages.compose import Composer, envelope_sender
from jobs.progress import Progress
from jobs.smtp.envelope import SESSION_PHASES, Envelope, FinalResult, FinalStatus
from jobs.smtp.retry import send_with_retry
from jobs.smtp.transport import Transport

__all__ = ["COMMIT_INTERVAL", "PassReport", "SendPass", "send_pass"]

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
    if final.possible_duplicate:  # a retry within this pass after a failure past DATA
        return True
    # An earlier attempt's outcome is unknown: it failed past DATA, or its process died with it
    # claimed (kill -9: it may have been on the wire). Resending the body now may make a second
    # copy; a resend that never got as far as the body makes none.
    body_resent = final.status is FinalStatus.SENT or final.unknown_outcome
    return claimed.outcome_unknown and body_resent


def _still_unknown(claimed: ClaimedDelivery, final: FinalResult, duplicate: bool) -> bool:
    """Whether the next send of this delivery must count as a possible duplicate."""
    if final.status is not FinalStatus.DEFERRED:
        return False
    return final.unknown_outcome or (claimed.outcome_unknown and not duplicate)


def _result(claimed: ClaimedDelivery, final: FinalResult) -> DeliveryResult:
    status = _STATUS[final.status]
    code, text = _reply(final)
    duplicate = _possible_duplicate(claimed, final)
    return DeliveryResult(
        claim=claimed,
        status=status,
        attempts=final.attempts,
        smtp_code=code,
        smtp_text=text or None,
        sent_at=datetime.now(UTC) if status is DeliveryStatus.SENT else None,
        possible_duplicate=duplicate,
        outcome_unknown=_still_unknown(claimed, final, duplicate),
        hard_bounces=final.hard_bounces,
    )


class SendPass:
    """One sending pass as an object: each part a named method, its state in readable fields.

    Parts:
    - claiming (`claim_loop`): takes small batches from the ledger, each claim committed before
      its messages go out, and feeds them to the connections;
    - sending (`connection`, `send_one`): one task per connection composes and sends;
    - committing (`commit_loop`): writes confirmed results in short batched transactions;
    - watching the relay (`watch_relay`): stops the pass when the relay itself is down.

    State a test can read: `report`, `held` (claimed, not yet handed to the server),
    `in_flight` (handed to the transport, no result yet), `confirmed` (results not yet
    committed), `committed` (results written so far) and `session_failures`.
    """

    def __init__(
        self,
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
    ) -> None:
        self.engine = engine
        self.run_record = run
        self.pass_no = pass_no
        self.composer = composer
        self.transport = transport
        self.smtp = smtp
        self.worker_id = worker_id
        self.connections = smtp.connections
        self.batch = claim_size or max(8, min(200, self.connections * 8))
        self.sender = envelope_sender(composer.message.from_)
        self.report = PassReport()
        # Claimed but not yet handed to the transport: certainly not sent, so given back on a
        # stop. Filled on the ledger thread as each claim commits, so a claim that finishes
        # after its claimer was cancelled is not forgotten.
        self.held: dict[int, ClaimedDelivery] = {}
        self.in_flight: dict[int, ClaimedDelivery] = {}
        self.confirmed: list[DeliveryResult] = []
        self.committed = 0
        self.terminated = False  # SIGTERM arrived: the pass stops as on Ctrl-C, then exit 143
        # Consecutive deliveries deferred because the session itself failed (connect, TLS,
        # AUTH): when every connection has seen it, the relay is down and every further
        # delivery would spend all its attempts the same way. The pass stops; the rest stays
        # pending (exit 3).
        self.session_failures = 0
        self._total = total
        self._progress = progress
        self._bar: Progress | None = None
        self._work: asyncio.Queue[ClaimedDelivery | None] = asyncio.Queue(maxsize=self.batch * 2)
        self._done_sending = asyncio.Event()
        # Database calls are blocking: one dedicated thread, a single writer for SQLite.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")

    async def in_db(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking ledger call on the pass's ledger thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args))

    # --- claiming ---------------------------------------------------------------------------

    def claim_batch(self) -> list[ClaimedDelivery]:
        """On the ledger thread: claim a batch and hold it until a connection takes it."""
        claims = claim(self.engine, self.run_record, self.pass_no, self.worker_id, self.batch)
        self.held.update((c.delivery_id, c) for c in claims)
        return claims

    async def claim_loop(self) -> None:
        """Feed claimed deliveries to the connections until nothing is left to claim."""
        while not self.report.relay_down and (claims := await self.in_db(self.claim_batch)):
            for c in claims:
                await self._work.put(c)
        for _ in range(self.connections):
            await self._work.put(None)

    def give_back(self) -> int:
        """On the ledger thread: deliveries claimed but never handed to the server go back."""
        return release(self.engine, list(self.held.values()))

    # --- sending ----------------------------------------------------------------------------

    def envelope(self, c: ClaimedDelivery) -> Envelope:
        """The delivery's message, composed with the Message-ID frozen in the ledger (§7)."""
        composed = self.composer.compose(c.delivery, message_id=c.message_id)
        if composed.fallback:
            self.report.charset_fallbacks.append(c.delivery.email)
        return Envelope(
            sender=self.sender,
            recipients=(c.delivery.email,),
            data=composed.data,
            message_id=c.message_id,
            key=c.delivery.key,
        )

    async def connection(self) -> None:
        """One connection's loop: send what the claimer hands over."""
        while (c := await self._work.get()) is not None:
            if not self.report.relay_down:  # else it stays held and is given back
                await self.send_one(c)

    async def send_one(self, c: ClaimedDelivery) -> None:
        """Send one delivery with its retries and queue its result for the committer."""
        envelope = self.envelope(c)
        self.held.pop(c.delivery_id, None)  # from here on the message may reach the server
        self.in_flight[c.delivery_id] = c
        try:
            final = await send_with_retry(
                self.transport,
                envelope,
                max_attempts=self.smtp.max_attempts,
                backoff_initial=self.smtp.backoff_initial_seconds,
                backoff_max=self.smtp.backoff_max_seconds,
            )
        finally:
            self.in_flight.pop(c.delivery_id, None)
        self.settle(c, final)

    def settle(self, c: ClaimedDelivery, final: FinalResult) -> None:
        """Count a delivery's final result and hand it to the committer."""
        result = _result(c, final)
        self.confirmed.append(result)
        report = self.report
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
        self.watch_relay(result, final)
        if self._bar is not None:
            self._bar.advance()

    # --- watching the relay -----------------------------------------------------------------

    def watch_relay(self, result: DeliveryResult, final: FinalResult) -> None:
        """Stop the pass once every connection saw the relay session itself fail."""
        if result.status is DeliveryStatus.DEFERRED and final.phase in SESSION_PHASES:
            self.session_failures += 1
            if self.session_failures >= self.connections and not self.report.relay_down:
                self.report.relay_down = (
                    f"the relay failed {self.session_failures} deliveries in a row before any "
                    f"message could be sent ({final.text}); stopped this "
                    "pass, the rest stays pending for the next run"
                )
        elif result.status is not DeliveryStatus.DEFERRED:
            self.session_failures = 0

    # --- committing -------------------------------------------------------------------------

    def commit(self, results: list[DeliveryResult]) -> int:
        """On the ledger thread: one short transaction for a batch of confirmed results."""
        updated = record(self.engine, results)
        self.committed += len(results)
        return updated

    async def commit_loop(self) -> None:
        """Commit confirmed results at most `COMMIT_INTERVAL` after the server confirmed them."""
        # Fixed cadence: each tick is due COMMIT_INTERVAL after the previous one started, not
        # after it finished, so the time a commit takes does not add to the age of what waits.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not (self._done_sending.is_set() and not self.confirmed):
            due = max(due + COMMIT_INTERVAL, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done_sending.wait(), due - loop.time())
            if self.confirmed:
                batch = self.confirmed[:]
                del self.confirmed[: len(batch)]
                await self.in_db(self.commit, batch)

    # --- the whole pass ---------------------------------------------------------------------

    async def _sending(self, tasks: list[asyncio.Task[None]]) -> None:
        try:
            await asyncio.gather(*tasks)
        finally:
            self._done_sending.set()

    def terminate(self, task: asyncio.Task[Any]) -> None:
        """SIGTERM: stop like Ctrl-C (cancel the pass; `run` then raises `Terminated`)."""
        self.terminated = True
        task.cancel()

    @contextlib.contextmanager
    def _sigterm_stops(self) -> Iterator[None]:
        """While the pass runs, SIGTERM cancels it cleanly instead of killing the process.

        The loop's own handler (not a Python one raising mid-callback) so that the stop goes
        through the same cancellation path as Ctrl-C. Only the main thread can take signals.
        """
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        previous = signal.getsignal(signal.SIGTERM)
        try:
            assert task is not None
            loop.add_signal_handler(signal.SIGTERM, self.terminate, task)
        except (RuntimeError, ValueError, NotImplementedError):
            yield  # not the main thread: whoever owns the process handles its signals
            return
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, previous)

    async def run(self) -> PassReport:
        """Send every delivery the pass can claim; returns when none is left to claim.

        When it stops early (a relay setup error, the ledger failing, Ctrl-C, SIGTERM), results
        the server confirmed are still committed and deliveries claimed but never handed to the
        server go back to `pending`; only those that were on their way stay `sending`.
        """
        with self._sigterm_stops():
            return await self._run()

    async def _run(self) -> PassReport:
        started = time.perf_counter()
        self._bar = Progress("sending", self._total) if self._progress else None
        commit_task = asyncio.create_task(self.commit_loop(), name="committer")
        senders = [asyncio.create_task(self.claim_loop(), name="claimer")]
        senders += [
            asyncio.create_task(self.connection(), name=f"sender-{i}")
            for i in range(self.connections)
        ]
        sending_task = asyncio.create_task(self._sending(senders), name="sending")
        try:
            # The committer is awaited alongside the senders: if the ledger stops taking
            # results, sending stops too instead of going on with nothing recorded. Shielded,
            # so that a cancellation (Ctrl-C) stops the senders but still commits what was
            # confirmed.
            await asyncio.gather(sending_task, asyncio.shield(commit_task))
        except BaseException:
            await self._stop(senders, sending_task, commit_task)
            if self.terminated:
                raise Terminated("SIGTERM") from None
            raise
        else:
            if self.report.relay_down:
                await self.in_db(self.give_back)
        finally:
            self._db.shutdown(wait=True)
            if self._bar is not None:
                self._bar.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    async def _stop(
        self,
        senders: list[asyncio.Task[None]],
        sending_task: asyncio.Task[None],
        commit_task: asyncio.Task[None],
    ) -> None:
        """A stop: cancel the senders, commit what was confirmed, give back what was held."""
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, sending_task, return_exceptions=True)
        self._done_sending.set()
        await asyncio.gather(commit_task, return_exceptions=True)  # what was confirmed
        try:
            # queued after any claim still running on the ledger thread, so it sees its rows
            await self.in_db(self.give_back)
        except sa.exc.SQLAlchemyError:
            # the error being raised is the one to report; the next pass resets these anyway
            log.warning("could not give back %d claimed deliveries", len(self.held), exc_info=True)


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
    """Send every delivery the pass can claim (a `SendPass` run to its end)."""
    return await SendPass(
        engine,
        run,
        pass_no,
        composer,
        transport,
        smtp,
        worker_id=worker_id,
        total=total,
        progress=progress,
        claim_size=claim_size,
    ).run()
