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

__all__ = ["send_with_retry"]


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

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max_attempts),
            wait=wait_random_exponential(multiplier=backoff_initial, max=backoff_max),
            retry=retry_if_result(_transient),
            retry_error_callback=_last_result,
            sleep=sleep,
        )
        last = await retrying(replay_then_attempt)
    recipients = tuple(final[address] for address in envelope.recipients)
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
