"""Retries of one delivery with tenacity (SPEC §7, STYLE "Errors").

Only TRANSIENT results are retried, with exponential backoff and full jitter, up to
`smtp.max_attempts`; what is still transient then is `deferred` for the next run. PERMANENT
results are final at once. The decision is made on the `SendResult`, never on an exception: the
transport returns failures as values and raises only for setup errors, which must stop the run.

A recipient that got a final answer (accepted, or refused for good) is dropped from the next
attempt, so that a partial refusal never sends a second copy to those who already have one. Every
attempt sends the same bytes, hence the same Message-ID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)

from jobs.smtp.envelope import (
    Envelope,
    FinalResult,
    Outcome,
    RecipientResult,
    SendResult,
    combined,
)
from jobs.smtp.transport import NotSent, Transport

__all__ = ["RetryPolicy", "one_attempt", "send_with_retry"]


class RetryPolicy:
    """tenacity's stop and wait strategies for one delivery, asked one attempt at a time.

    The sending pass never sleeps on a retry: after a transient attempt it asks `wait_after`
    how long the delivery must wait (or whether it has spent its attempts) and puts it back in
    the queue with that not-before time, so the connection moves on (issue 8). The strategies
    are exactly those `send_with_retry` hands to tenacity's loop, so attempts and backoff are
    the same either way.
    """

    def __init__(self, max_attempts: int, backoff_initial: float, backoff_max: float) -> None:
        self.stop = stop_after_attempt(max_attempts)
        self.wait = wait_random_exponential(multiplier=backoff_initial, max=backoff_max)
        self._retrying = AsyncRetrying(stop=self.stop, wait=self.wait)

    def wait_after(self, attempt_number: int) -> float | None:
        """Seconds to wait after transient attempt `attempt_number`; None: attempts are spent."""
        state = RetryCallState(self._retrying, fn=None, args=(), kwargs={})
        state.attempt_number = attempt_number
        if self.stop(state):
            return None
        return float(self.wait(state))


def one_attempt(
    envelope: Envelope, result: SendResult, *, possible_duplicate: bool = False
) -> FinalResult:
    """One attempt's result as the delivery's final one (sent, failed, or deferred when spent)."""
    answered = {r.address: r for r in result.recipients}
    return _final(envelope, answered, result, attempts=1, possible_duplicate=possible_duplicate)


def _final(
    envelope: Envelope,
    answered: dict[str, RecipientResult],
    last: SendResult,
    *,
    attempts: int,
    possible_duplicate: bool,
) -> FinalResult:
    """The delivery's result: each recipient's last answer, the last attempt's reply."""
    recipients = tuple(answered[address] for address in envelope.recipients)
    return FinalResult(
        key=envelope.key,
        message_id=envelope.message_id,
        outcome=combined(recipients),
        attempts=attempts,
        code=last.code,
        text=last.text,
        recipients=recipients,
        possible_duplicate=possible_duplicate,
        unknown_outcome=last.after_data,
        phase=last.phase,
    )


def _transient(result: SendResult) -> bool:
    return result.outcome is Outcome.TRANSIENT


def _last_result(state: RetryCallState) -> SendResult:
    """When attempts run out, the last (transient) result stands: the delivery is deferred."""
    assert state.outcome is not None
    result: SendResult = state.outcome.result()
    return result


async def send_with_retry(
    transport: Transport,
    envelope: Envelope,
    *,
    max_attempts: int,
    backoff_initial: float,
    backoff_max: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FinalResult:
    """Send `envelope` until every recipient has a final answer or `max_attempts` are spent."""
    final: dict[str, RecipientResult] = {}
    pending = envelope
    attempts = 0
    after_data_seen = False
    possible_duplicate = False

    async def attempt() -> SendResult:
        nonlocal pending, attempts, after_data_seen, possible_duplicate
        # §7: resending after a failure past DATA may deliver a second copy; count it.
        possible_duplicate = possible_duplicate or after_data_seen
        try:
            result = await transport.send(pending)
        except NotSent:
            if attempts:
                # an earlier attempt was on the wire: the delivery is not "never sent"
                raise asyncio.CancelledError() from None
            raise
        attempts += 1
        after_data_seen = after_data_seen or result.after_data
        for recipient in result.recipients:
            final[recipient.address] = recipient
        still_open = tuple(r.address for r in result.recipients if r.outcome is Outcome.TRANSIENT)
        if still_open:
            pending = envelope.only(still_open)
        return result

    # Nearly every delivery is settled by its first attempt, which is therefore made directly:
    # tenacity's machinery costs about 40 µs per delivery, a few percent of the whole send path.
    # A result worth retrying is handed to tenacity as its own first attempt's result, so the
    # attempt count, the backoff and the give-up rule are exactly those of a plain tenacity loop.
    # An exception propagates as tenacity would let it (it never retries on one).
    last = await attempt()
    if _transient(last):
        first: list[SendResult] = [last]

        async def replay_then_attempt() -> SendResult:
            return first.pop() if first else await attempt()

        policy = RetryPolicy(max_attempts, backoff_initial, backoff_max)
        retrying = AsyncRetrying(
            stop=policy.stop,
            wait=policy.wait,
            retry=retry_if_result(_transient),
            retry_error_callback=_last_result,
            sleep=sleep,
        )
        last = await retrying(replay_then_attempt)
    return _final(envelope, final, last, attempts=attempts, possible_duplicate=possible_duplicate)
