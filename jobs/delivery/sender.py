"""The sending pipeline of one pass: claim → compose → send (one attempt) → record or requeue.

Four kinds of asyncio tasks share one event loop:
- a claimer takes small batches of deliveries from the ledger (each claim committed before its
  messages go out, so a crash leaves them `sending` for the next pass to find);
- `transport.concurrency` senders (several per connection, so that a pipelining connection
  always has a next message to group with) each compose a message and make one attempt through
  the pool; a delivery that must wait for a retry goes back to the queue instead of holding a
  connection;
- a committer writes confirmed results in short batched transactions, at most `COMMIT_INTERVAL`
  after the server confirmed them (SPEC §7: at most the last 50 ms can be sent twice after a
  kill -9). Progress is the ledger itself: nothing is counted in memory and written later;
- a lease keeper renews this sender's lease and takes back the claims of dead senders (§9).

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
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from jobs.config.settings import SmtpSettings
from jobs.errors import LostRun, Terminated
from jobs.i18n import N_, _, tr
from jobs.ledger.lock import RunLock
from jobs.ledger.queue import claim, queue_state, record, release
from jobs.ledger.values import ClaimedDelivery, DeliveryResult, DeliveryStatus, RunRecord
from jobs.ledger.workers import heartbeat, take_back
from jobs.messages.compose import Composer
from jobs.progress import Progress
from jobs.smtp.envelope import (
    SESSION_PHASES,
    Envelope,
    FinalResult,
    FinalStatus,
    Outcome,
    SendResult,
)
from jobs.smtp.retry import RetryPolicy, one_attempt
from jobs.smtp.transport import NotSent, Transport

__all__ = ["COMMIT_INTERVAL", "PassReport", "SendPass"]

log = logging.getLogger(__name__)

COMMIT_INTERVAL = 0.05  # seconds: the oldest confirmed-but-uncommitted result (§7)
IDLE_POLL = 0.5  # seconds: how often an idle sender looks at the queue again at most
STALE_WAIT = 60.0  # seconds overdue: a waiting delivery another sender must have taken
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
    waited: int = 0  # transient attempts whose delivery went back to the queue to wait
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


def _result(
    claimed: ClaimedDelivery, final: FinalResult, *, not_before: datetime | None = None
) -> DeliveryResult:
    """The ledger's record of one attempt: final, or (with `not_before`) a wait in the queue."""
    status = _STATUS[final.status] if not_before is None else DeliveryStatus.PENDING
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
        not_before=not_before,
        retry_attempts=claimed.retry_attempts + final.attempts,
    )


class SendPass:
    """One sending pass as an object: each part a named method, its state in readable fields.

    Parts:
    - claiming (`claim_loop`): takes small batches from the ledger, each claim committed before
      its messages go out, and feeds them to the connections;
    - sending (`connection`, `send_one`): one task per connection composes and makes one
      attempt; a delivery that must wait for its next attempt goes back to the queue with a
      not-before time (`requeue`) and the connection moves on (issue 8: retries never hold a
      connection idle). tenacity's stop and wait strategies (`RetryPolicy`) decide when and
      whether;
    - committing (`commit_loop`): writes confirmed results in short batched transactions;
    - watching the relay (`watch_relay`): stops the pass when the relay itself is down;
    - watching the lease (`watch_lease`): renews this sender's lease, takes back the claims of
      senders whose lease expired, and stops sending when this sender lost its run lock, its
      lease or its database session (§9).

    The pass ends when nothing is claimable and nothing can become claimable again: no
    delivery of the run waits for a retry (each was sent or spent its attempts) and, for a
    coordinator (`wait_for_others`), no other sender still holds claims.

    State a test can read: `report`, `held` (claimed, not yet handed to the server),
    `in_flight` (handed to the transport, no result yet), `waiting` (this pass's deliveries
    back in the queue, by id, with the loop time they are due), `confirmed` (results not yet
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
        wait_for_others: bool = False,
        lease_seconds: float | None = None,
        lock: RunLock | None = None,
    ) -> None:
        self.engine = engine
        self.run_record = run
        self.pass_no = pass_no
        self.composer = composer
        self.transport = transport
        self.smtp = smtp
        self.worker_id = worker_id
        self.connections = smtp.connections
        # concurrent sends: more than connections, so that PIPELINING has a next message
        self.senders = max(self.connections, transport.concurrency)
        self.batch = claim_size or max(8, min(200, self.senders * 2, self.connections * 8))
        self.return_path = composer.return_path()  # §10: VERP, or the From address
        self.report = PassReport()
        # Claimed but not yet handed to the transport: certainly not sent, so given back on a
        # stop. Filled on the ledger thread as each claim commits, so a claim that finishes
        # after its claimer was cancelled is not forgotten.
        self.held: dict[int, ClaimedDelivery] = {}
        self.in_flight: dict[int, ClaimedDelivery] = {}
        self.waiting: dict[int, float] = {}
        # the bytes of each waiting delivery: its retry sends exactly what the first attempt
        # sent (same Date as well as the same Message-ID) when this sender takes it again
        self.composed: dict[int, Envelope] = {}
        # fresh deliveries a connection did not start because the relay looked down
        self.parked: list[ClaimedDelivery] = []
        self.confirmed: list[DeliveryResult] = []
        self.committed = 0
        self.policy = RetryPolicy(
            smtp.max_attempts, smtp.backoff_initial_seconds, smtp.backoff_max_seconds
        )
        self.wait_for_others = wait_for_others
        self.lease_seconds = lease_seconds
        self.lock = lock
        self.fenced = ""  # why this sender stopped: lost its run lock, lease or session
        self.taken_back = 0  # claims of dead senders this one put back in the queue
        self._committing = 0  # results taken by the committer, not yet written
        self._changed = asyncio.Event()  # a result was settled or committed: look again
        self.terminated = False  # SIGTERM arrived: the pass stops as on Ctrl-C, then exit 143
        # Consecutive attempts that failed in the session itself (connect, TLS, AUTH): once
        # every connection has seen it the relay looks down, and only deliveries already
        # retrying go out; when one of them spends its attempts that way the relay is down
        # and every further delivery would do the same. The pass stops; the rest stays
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

    @property
    def relay_suspect(self) -> bool:
        """Every connection just saw the relay session fail: start no fresh delivery."""
        return self.session_failures >= self.connections

    def claim_batch(self) -> list[ClaimedDelivery]:
        """On the ledger thread: claim a batch and hold it until a connection takes it."""
        claims = claim(
            self.engine,
            self.run_record,
            self.pass_no,
            self.worker_id,
            self.batch,
            retries_only=self.relay_suspect,
        )
        self.held.update((c.delivery_id, c) for c in claims)
        return claims

    async def claim_loop(self) -> None:
        """Feed claimed deliveries to the connections until nothing is left to claim."""
        while not self.report.relay_down:
            self._changed.clear()
            if self.parked:
                await self.in_db(self.unpark)
            claims = await self.in_db(self.claim_batch)
            for c in claims:
                self.waiting.pop(c.delivery_id, None)
                await self._work.put(c)
            if not claims and await self.drained():
                break
        for _slot in range(self.senders):
            await self._work.put(None)

    async def drained(self) -> bool:
        """Nothing was claimable: True when nothing can come back; else wait, then look again."""
        loop = asyncio.get_running_loop()
        wait = IDLE_POLL
        if self.held or self.in_flight or self.confirmed or self._committing:
            # a result on its way may put a delivery back in the queue
            now = loop.time()
            # an entry long overdue was taken by another sender: it no longer wakes this one
            for stale in [i for i, due in self.waiting.items() if due < now - STALE_WAIT]:
                del self.waiting[stale]
                self.composed.pop(stale, None)
            if self.waiting:
                wait = min(wait, max(COMMIT_INTERVAL, min(self.waiting.values()) - now))
        else:
            state = await self.in_db(queue_state, self.engine, self.run_record, self.worker_id)
            if not state.pending and not (self.wait_for_others and state.others_sending):
                return True
            if state.next_due is not None:
                due_in = (state.next_due - datetime.now(UTC)).total_seconds()
                wait = min(wait, max(COMMIT_INTERVAL, due_in))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), wait)
        return False

    def unpark(self) -> int:
        """On the ledger thread: parked deliveries go back to the queue, untouched."""
        parked, self.parked = self.parked, []
        released = release(self.engine, parked)
        for c in parked:
            self.held.pop(c.delivery_id, None)
        return released

    def give_back(self) -> int:
        """On the ledger thread: deliveries claimed but never handed to the server go back."""
        return release(self.engine, list(self.held.values()))

    # --- sending ----------------------------------------------------------------------------

    def envelope(self, c: ClaimedDelivery) -> Envelope:
        """The delivery's message, composed with the Message-ID frozen in the ledger (§7)."""
        if (earlier := self.composed.pop(c.delivery_id, None)) is not None:
            return earlier
        composed = self.composer.compose(c.delivery, message_id=c.message_id)
        if composed.fallback:
            self.report.charset_fallbacks.append(c.delivery.email)
        return Envelope(
            sender=self.return_path.for_delivery(c.delivery_id, c.message_id),
            recipients=(self.composer.recipient(c.delivery),),  # §10: redirect_all_to
            data=composed.data,
            message_id=composed.message_id,
            key=c.delivery.key,
            crlf_form=True,  # the composer's bytes are in wire line form already
        )

    async def connection(self) -> None:
        """One connection's loop: send what the claimer hands over."""
        while (c := await self._work.get()) is not None:
            if self.report.relay_down:
                continue  # it stays held and is given back
            if self.relay_suspect and not c.retry_attempts:
                self.parked.append(c)  # no fresh attempt while the relay looks down
                continue
            await self.send_one(c)

    async def send_one(self, c: ClaimedDelivery) -> None:
        """One attempt; the result is final, or the delivery goes back to the queue to wait."""
        envelope = self.envelope(c)
        self.held.pop(c.delivery_id, None)  # from here on the message may reach the server
        self.in_flight[c.delivery_id] = c
        try:
            attempt = await self.transport.send(envelope)
        except NotSent:
            self.held[c.delivery_id] = c  # stopped while queued in the transport: given back
            raise
        finally:
            self.in_flight.pop(c.delivery_id, None)
        final = one_attempt(envelope, attempt)
        delay = None
        if attempt.outcome is Outcome.TRANSIENT:
            delay = self.policy.wait_after(c.retry_attempts + 1)
        self.watch_relay(attempt, spent=attempt.outcome is Outcome.TRANSIENT and delay is None)
        if delay is None:
            self.settle(c, final)
        else:
            self.requeue(c, envelope, final, delay)
        self._changed.set()

    def requeue(
        self, c: ClaimedDelivery, envelope: Envelope, final: FinalResult, delay: float
    ) -> None:
        """Back to the queue until `delay` has passed, in memory and (via the committer) ledger."""
        self.waiting[c.delivery_id] = asyncio.get_running_loop().time() + delay
        self.composed[c.delivery_id] = envelope
        not_before = datetime.now(UTC) + timedelta(seconds=delay)
        result = _result(c, final, not_before=not_before)
        self.confirmed.append(result)
        self.report.waited += 1
        self.report.possible_duplicates += int(result.possible_duplicate)

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
                tr(
                    "{email}: {status} after {n} attempt(s): {reply}",
                    email=c.delivery.email,
                    status=result.status.value,
                    n=result.retry_attempts,
                    reply=reply,
                ).rstrip()
            )
        report.possible_duplicates += int(result.possible_duplicate)
        report.hard_bounces += len(final.hard_bounces)
        if self._bar is not None:
            self._bar.advance()

    # --- watching the relay -----------------------------------------------------------------

    def watch_relay(self, attempt: SendResult, *, spent: bool) -> None:
        """Stop the pass when the relay session keeps failing on every connection.

        `spent`: this attempt was the delivery's last (it is deferred). Any attempt that got
        past the session (even a 451 to RCPT) proves the relay answers, and ends the streak.
        """
        if attempt.outcome is not Outcome.TRANSIENT or attempt.phase not in SESSION_PHASES:
            self.session_failures = 0
            return
        self.session_failures += 1
        if spent and self.relay_suspect and not self.report.relay_down:
            self.report.relay_down = tr(
                "the relay failed {n} attempts in a row before any message could be sent"
                " ({reply}); stopped this pass, the rest stays pending for the next run",
                n=self.session_failures,
                reply=attempt.text,
            )

    # --- watching the lease -----------------------------------------------------------------

    def beat(self) -> str:
        """On the ledger thread: renew the lease, take back dead senders' claims; "" if fine."""
        assert self.lease_seconds is not None
        if self.lock is not None and not self.lock.still_held():
            return tr("lost the run lock of {run_id}", run_id=self.run_record.run_id)
        if not heartbeat(self.engine, self.run_record, self.worker_id):
            return _("was declared stopped in the ledger")
        self.taken_back += take_back(self.engine, self.run_record, self.lease_seconds)
        return ""

    async def watch_lease(self, task: asyncio.Task[Any]) -> None:
        """Beat every third of the lease; stop sending unless each beat lands within the lease.

        A sender that cannot prove it lives may already have lost its claims to another one:
        it stops before the lease ends, so two senders never hold one claim at the same time.
        """
        assert self.lease_seconds is not None
        every = self.lease_seconds / 3
        while True:
            await asyncio.sleep(every)
            try:
                # the beat queues behind ledger work on the one thread: its wait counts too
                reason = await asyncio.wait_for(self.in_db(self.beat), self.lease_seconds / 2)
            except TimeoutError:
                reason = tr(
                    "could not renew its lease within {seconds:g}s",
                    seconds=self.lease_seconds / 2,
                )
            except sa.exc.DBAPIError as exc:
                reason = tr("lost its database session ({kind})", kind=type(exc.orig).__name__)
            if reason:
                self.fenced = reason
                task.cancel()
                return

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
                self._committing = len(batch)
                try:
                    await self.in_db(self.commit, batch)
                finally:
                    self._committing = 0
                self._changed.set()

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
        self._bar = Progress(N_("sending"), self._total) if self._progress else None
        commit_task = asyncio.create_task(self.commit_loop(), name="committer")
        current = asyncio.current_task()
        assert current is not None
        lease_task = (
            asyncio.create_task(self.watch_lease(current), name="lease")
            if self.lease_seconds is not None
            else None
        )
        senders = [asyncio.create_task(self.claim_loop(), name="claimer")]
        senders += [
            asyncio.create_task(self.connection(), name=f"sender-{i}") for i in range(self.senders)
        ]
        sending_task = asyncio.create_task(self._sending(senders), name="sending")
        try:
            # The committer is awaited alongside the senders: if the ledger stops taking
            # results, sending stops too instead of going on with nothing recorded. Shielded,
            # so that a cancellation (Ctrl-C) stops the senders but still commits what was
            # confirmed.
            await asyncio.gather(sending_task, asyncio.shield(commit_task))
        except BaseException:
            if lease_task is not None:
                lease_task.cancel()  # no second cancellation in the middle of the cleanup
            await self._stop(senders, sending_task, commit_task)
            if self.terminated:
                raise Terminated("SIGTERM") from None
            if self.fenced:
                raise LostRun(
                    tr(
                        "this sender {reason}: stopped sending; what the server confirmed is"
                        " recorded, and the run can be resumed",
                        reason=self.fenced,
                    )
                ) from None
            raise
        else:
            if self.report.relay_down:
                await self.in_db(self.give_back)
        finally:
            if lease_task is not None:
                lease_task.cancel()
                await asyncio.gather(lease_task, return_exceptions=True)
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
