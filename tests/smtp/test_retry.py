"""Retries with tenacity against real servers: what is retried, how often, and what is reported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from jobs.config.settings import SmtpSettings
from jobs.smtp import (
    Envelope,
    FinalResult,
    FinalStatus,
    NotSent,
    Outcome,
    SmtpPool,
    SmtpSetupError,
    send_with_retry,
)
from tests.smtpd import DROP, RecordingHandler, SmtpServer, Stall

Server = Callable[..., SmtpServer]
Settings = Callable[..., SmtpSettings]
MakeEnvelope = Callable[..., Envelope]


async def deliver(settings: SmtpSettings, envelope: Envelope) -> FinalResult:
    async with SmtpPool(settings, None) as pool:
        return await send_with_retry(
            pool,
            envelope,
            max_attempts=settings.max_attempts,
            backoff_initial=settings.backoff_initial_seconds,
            backoff_max=settings.backoff_max_seconds,
        )


async def test_accepted_first_time(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    envelope = make_envelope()
    result = await deliver(smtp_settings(server), envelope)
    assert (result.status, result.attempts, result.code) == (FinalStatus.SENT, 1, 250)
    assert (result.key, result.message_id) == (envelope.key, envelope.message_id)
    assert not result.possible_duplicate


async def test_greylisting_451_then_accepted(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": ["451 4.7.1 greylisted, try again later"]})
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server), make_envelope())
    assert (result.status, result.attempts) == (FinalStatus.SENT, 2)
    assert handler.commands["RCPT"] == 2
    assert len(handler.messages) == 1


async def test_user_unknown_fails_at_once_and_is_flagged(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": "550 5.1.1 <gone@example.jp>: user unknown"})
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server, max_attempts=5), make_envelope("gone@example.jp"))
    assert (result.status, result.attempts, result.code) == (FinalStatus.FAILED, 1, 550)
    assert result.hard_bounces == ("gone@example.jp",)
    assert handler.commands["MAIL"] == 1  # never retried


async def test_554_at_data_fails_at_once_without_bounce(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data="554 5.7.1 message refused")
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server, max_attempts=5), make_envelope())
    assert (result.status, result.attempts, result.code) == (FinalStatus.FAILED, 1, 554)
    assert result.hard_bounces == ()
    assert result.text == "5.7.1 message refused"
    assert handler.commands["DATA"] == 1


async def test_421_every_time_is_deferred_after_max_attempts(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(mail="421 4.3.2 try again later")
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server, max_attempts=4), make_envelope())
    assert (result.status, result.attempts, result.code) == (FinalStatus.DEFERRED, 4, 421)
    assert handler.commands["MAIL"] == 4
    assert not result.unknown_outcome


async def test_drop_after_the_body_resends_the_same_bytes_and_reports_it(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data=[DROP])
    server = smtp_server(handler)
    envelope = make_envelope()
    result = await deliver(smtp_settings(server), envelope)
    assert (result.status, result.attempts) == (FinalStatus.SENT, 2)
    assert result.possible_duplicate
    assert not result.unknown_outcome
    first, second = handler.bodies
    assert first.data == second.data == envelope.data
    assert first.message_id == second.message_id == envelope.message_id


async def test_drop_after_the_body_on_the_last_attempt_leaves_an_unknown_outcome(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data=DROP)
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server, max_attempts=2), make_envelope())
    assert (result.status, result.attempts) == (FinalStatus.DEFERRED, 2)
    assert result.unknown_outcome and result.possible_duplicate


async def test_transient_failure_before_data_is_no_duplicate(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": [DROP]})
    server = smtp_server(handler)
    result = await deliver(smtp_settings(server), make_envelope())
    assert (result.status, result.attempts) == (FinalStatus.SENT, 2)
    assert not result.possible_duplicate


async def test_only_recipients_still_pending_are_retried(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(
        rcpt={
            "later@example.jp": ["450 4.2.1 mailbox busy"],
            "gone@example.jp": "550 5.1.1 user unknown",
        }
    )
    server = smtp_server(handler)
    envelope = make_envelope("taro@example.jp", "later@example.jp", "gone@example.jp")
    result = await deliver(smtp_settings(server), envelope)
    assert [(r.address, r.outcome) for r in result.recipients] == [
        ("taro@example.jp", Outcome.SENT),
        ("later@example.jp", Outcome.SENT),
        ("gone@example.jp", Outcome.PERMANENT),
    ]
    assert result.attempts == 2
    assert result.status is FinalStatus.FAILED  # one recipient failed for good
    assert result.hard_bounces == ("gone@example.jp",)
    # Nobody got two copies: the second attempt went to the busy mailbox alone.
    assert [m.rcpt_tos for m in handler.messages] == [
        ("taro@example.jp",),
        ("later@example.jp",),
    ]


async def test_unreachable_server_is_deferred(
    closed_port: int, make_envelope: MakeEnvelope
) -> None:
    settings = SmtpSettings(
        host="127.0.0.1",
        port=closed_port,
        max_attempts=3,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.02,
    )
    result = await deliver(settings, make_envelope())
    assert (result.status, result.attempts, result.code) == (FinalStatus.DEFERRED, 3, None)
    assert result.text.startswith("connect: ")


async def test_backoff_waits_grow_and_stay_under_the_cap(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(mail="451 4.3.0 try later")
    server = smtp_server(handler)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await send_with_retry(
            pool, make_envelope(), max_attempts=6, backoff_initial=1.0, backoff_max=4.0, sleep=sleep
        )
    assert result.attempts == 6
    assert len(waits) == 5
    # Full jitter: each wait is random within [0, min(cap, initial * 2**n)].
    for n, wait in enumerate(waits):
        assert 0 <= wait <= min(4.0, 2.0**n)


async def test_setup_errors_are_raised_not_retried(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()  # offers no STARTTLS
    settings = smtp_settings(server, security="starttls", max_attempts=5)
    with pytest.raises(SmtpSetupError, match="does not offer STARTTLS"):
        await deliver(settings, make_envelope())
    assert server.handler.connections == 1


@pytest.mark.parametrize(
    ("script", "status", "attempts", "sleeps"),
    [
        ("250 2.1.5 OK", FinalStatus.SENT, 1, 0),
        ("550 5.1.1 user unknown", FinalStatus.FAILED, 1, 0),
        (["451 4.7.1 greylisted"], FinalStatus.SENT, 2, 1),
        (["451 4.7.1 greylisted"] * 2, FinalStatus.SENT, 3, 2),
        ("451 4.7.1 greylisted", FinalStatus.DEFERRED, 3, 2),
    ],
)
async def test_backoff_only_between_attempts(
    smtp_server: Server,
    smtp_settings: Settings,
    make_envelope: MakeEnvelope,
    script: str | list[str],
    status: FinalStatus,
    attempts: int,
    sleeps: int,
) -> None:
    # The first attempt is made outside tenacity: whatever it returns, the count of attempts and
    # of waits must be what a tenacity loop of max_attempts gives.
    handler = RecordingHandler(rcpt={"*": script})
    server = smtp_server(handler)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await send_with_retry(
            pool, make_envelope(), max_attempts=3, backoff_initial=1.0, backoff_max=4.0, sleep=sleep
        )
    assert (result.status, result.attempts, len(waits)) == (status, attempts, sleeps)
    assert handler.commands["RCPT"] == attempts


async def test_a_single_attempt_allowed_is_not_retried(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": "451 4.7.1 greylisted"})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await send_with_retry(
            pool, make_envelope(), max_attempts=1, backoff_initial=1.0, backoff_max=4.0
        )
    assert (result.status, result.attempts, result.code) == (FinalStatus.DEFERRED, 1, 451)
    assert handler.commands["RCPT"] == 1


async def test_a_retry_stopped_while_queued_is_not_reported_as_never_sent(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    # A's first attempt was answered (451); during its backoff B takes the only connection and
    # stalls, so A's second attempt waits in the pool's queue when the run stops. A was on the
    # wire before: the sender must not give it back as "never sent" (NotSent).
    handler = RecordingHandler(mail=["451 4.3.0 try again later", Stall(30)])
    server = smtp_server(handler)
    seen: list[str] = []
    async with SmtpPool(smtp_settings(server, timeout_seconds=30.0), None) as pool:
        blocker: list[asyncio.Task[object]] = []

        async def backoff(seconds: float) -> None:
            blocker.append(asyncio.create_task(pool.send(make_envelope("b@example.jp"))))
            while handler.commands["MAIL"] < 2:
                await asyncio.sleep(0.01)

        async def send_a() -> None:
            try:
                await send_with_retry(
                    pool,
                    make_envelope("a@example.jp"),
                    max_attempts=3,
                    backoff_initial=0.01,
                    backoff_max=0.02,
                    sleep=backoff,
                )
            except NotSent:
                seen.append("not sent")
                raise
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        a = asyncio.create_task(send_a())
        while not blocker or handler.commands["MAIL"] < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # A's second attempt is now queued behind B
        a.cancel()
        blocker[0].cancel()
        await asyncio.gather(a, *blocker, return_exceptions=True)
    assert seen == ["cancelled"]
    assert handler.commands["MAIL"] == 2  # A's second attempt never reached the server
