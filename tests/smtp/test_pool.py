"""One attempt through the pool against real aiosmtpd servers with injected replies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope, NotSent, Outcome, Phase, RateLimiter, SmtpPool
from tests.smtpd import DROP, RecordingHandler, SmtpServer, Stall

Server = Callable[..., SmtpServer]
Settings = Callable[..., SmtpSettings]
MakeEnvelope = Callable[..., Envelope]


async def test_accepted_message_arrives_byte_for_byte(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    envelope = make_envelope("taro@example.jp")
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(envelope)
    assert (result.outcome, result.code, result.phase) == (Outcome.SENT, 250, None)
    [received] = server.handler.messages
    # No re-folding of the long Subject, no re-encoding of the 8-bit body, dots unstuffed.
    assert received.data == envelope.data
    assert (received.mail_from, received.rcpt_tos) == (envelope.sender, envelope.recipients)
    # The 8-bit body is announced, and so is its size (RFC 6152, RFC 1870).
    size = len(envelope.data)  # already CRLF-terminated
    assert set(received.mail_options) == {"BODY=8BITMIME", f"SIZE={size}"}


async def test_rcpt_5_1_1_is_permanent_and_a_hard_bounce(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": "550 5.1.1 <gone@example.jp>: user unknown"})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope("gone@example.jp"))
    assert (result.outcome, result.code, result.phase) == (Outcome.PERMANENT, 550, Phase.RCPT)
    assert [r.hard_bounce for r in result.recipients] == [True]
    assert handler.commands["DATA"] == 0


async def test_partial_refusal_is_classified_per_recipient(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"gone@example.jp": "550 5.1.1 user unknown"})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope("taro@example.jp", "gone@example.jp"))
    taro, gone = result.recipients
    assert (taro.address, taro.outcome, taro.code) == ("taro@example.jp", Outcome.SENT, 250)
    assert (gone.address, gone.outcome, gone.code, gone.hard_bounce) == (
        "gone@example.jp",
        Outcome.PERMANENT,
        550,
        True,
    )
    assert result.outcome is Outcome.PERMANENT
    assert [m.rcpt_tos for m in handler.messages] == [("taro@example.jp",)]


async def test_reply_after_the_body_bounces_only_a_single_recipient(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data="550 5.1.1 mailbox unknown")
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        single = await pool.send(make_envelope("a@example.jp"))
        double = await pool.send(make_envelope("a@example.jp", "b@example.jp"))
    assert [r.hard_bounce for r in single.recipients] == [True]
    assert [r.hard_bounce for r in double.recipients] == [False, False]
    assert {r.outcome for r in double.recipients} == {Outcome.PERMANENT}


async def test_rset_after_a_refusal_keeps_the_connection(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"gone@example.jp": "550 5.1.1 user unknown"})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        first = await pool.send(make_envelope("gone@example.jp"))
        second = await pool.send(make_envelope("taro@example.jp"))
    assert (first.outcome, second.outcome) == (Outcome.PERMANENT, Outcome.SENT)
    assert handler.commands["RSET"] == 1
    assert handler.connections == 1


async def test_pool_reuses_its_connections(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(50)]
    async with SmtpPool(smtp_settings(server, connections=2), None) as pool:
        results = await asyncio.gather(*(pool.send(e) for e in envelopes))
        opened = pool.sessions_opened
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len(server.handler.messages) == 50
    assert server.handler.connections == opened <= 2


async def test_a_dropped_connection_is_replaced(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data=[DROP])
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        dropped = await pool.send(make_envelope())
        after = [await pool.send(make_envelope()) for _ in range(3)]
    assert (dropped.outcome, dropped.after_data, dropped.phase) == (
        Outcome.TRANSIENT,
        True,
        Phase.BODY,
    )
    assert [r.outcome for r in after] == [Outcome.SENT] * 3
    assert handler.connections == 2


async def test_a_connection_found_dead_is_reopened_without_failing_the_send(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    # The server hangs up when the second message starts (as after an idle timeout).
    handler = RecordingHandler(mail=["250 OK", DROP])
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        first = await pool.send(make_envelope())
        second = await pool.send(make_envelope())
    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.SENT)
    assert handler.connections == 2
    assert len(handler.messages) == 2


async def test_drop_before_the_body_is_not_after_data(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": [DROP]})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope())
    assert (result.outcome, result.after_data, result.phase) == (
        Outcome.TRANSIENT,
        False,
        Phase.RCPT,
    )
    assert handler.bodies == []


async def test_slow_final_reply_times_out_after_data(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(data=[Stall(30)])
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server, timeout_seconds=1.0), None) as pool:
        result = await pool.send(make_envelope())
    assert (result.outcome, result.code, result.after_data, result.phase) == (
        Outcome.TRANSIENT,
        None,
        True,
        Phase.BODY,
    )
    assert len(handler.bodies) == 1


async def test_slow_rcpt_reply_times_out_before_data(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(rcpt={"*": [Stall(30)]})
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server, timeout_seconds=1.0), None) as pool:
        result = await pool.send(make_envelope())
        again = await pool.send(make_envelope())
    assert (result.outcome, result.after_data, result.phase) == (
        Outcome.TRANSIENT,
        False,
        Phase.RCPT,
    )
    assert again.outcome is Outcome.SENT  # on a fresh connection: the old one was discarded
    assert handler.connections == 2


async def test_421_closes_the_session_and_is_transient(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    handler = RecordingHandler(mail=["421 4.3.2 service shutting down"])
    server = smtp_server(handler)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope())
        again = await pool.send(make_envelope())
    assert (result.outcome, result.code, result.phase) == (Outcome.TRANSIENT, 421, Phase.MAIL)
    assert again.outcome is Outcome.SENT
    assert handler.connections == 2


async def test_refused_connection_is_transient(
    closed_port: int, make_envelope: MakeEnvelope
) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=closed_port, timeout_seconds=2.0)
    async with SmtpPool(settings, None) as pool:
        result = await pool.send(make_envelope())
    assert (result.outcome, result.code, result.phase) == (
        Outcome.TRANSIENT,
        None,
        Phase.CONNECT,
    )
    assert result.text.startswith("connect: ")


async def test_non_ascii_address_uses_smtputf8(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope("太郎@example.jp"))
    assert result.outcome is Outcome.SENT
    [received] = server.handler.messages
    assert received.rcpt_tos == ("太郎@example.jp",)
    assert "SMTPUTF8" in received.mail_options


async def test_non_ascii_address_without_smtputf8_fails_that_message(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server(enable_SMTPUTF8=False)
    async with SmtpPool(smtp_settings(server), None) as pool:
        result = await pool.send(make_envelope("太郎@example.jp"))
    assert result.outcome is Outcome.PERMANENT
    assert "SMTPUTF8" in result.text
    assert server.handler.commands["MAIL"] == 0


async def test_rate_limiter_paces_every_send_of_the_pool(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(10, clock=lambda: 0.0, sleep=sleep)  # a clock that never moves
    server = smtp_server()
    async with SmtpPool(smtp_settings(server, connections=3), None, limiter=limiter) as pool:
        await asyncio.gather(*(pool.send(make_envelope()) for _ in range(4)))
    assert sorted(slept) == pytest.approx([0.1, 0.2, 0.3])
    assert len(server.handler.messages) == 4


async def test_setting_rate_builds_a_pool_wide_limiter(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    async with SmtpPool(smtp_settings(server, rate_per_second=1000.0), None) as pool:
        results = await asyncio.gather(*(pool.send(make_envelope()) for _ in range(5)))
    assert {r.outcome for r in results} == {Outcome.SENT}


async def test_close_quits_idle_connections(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    pool = SmtpPool(smtp_settings(server, connections=2), None)
    await pool.send(make_envelope())
    await pool.close()
    assert server.handler.commands["QUIT"] == 1
    with pytest.raises(RuntimeError, match="after close"):
        await pool.send(make_envelope())


async def test_a_cancelled_send_says_whether_its_envelope_was_written(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    # One connection, its first message stuck at MAIL: the second waits in the pool's queue.
    handler = RecordingHandler(mail=[Stall(30)])
    server = smtp_server(handler)
    seen: dict[str, str] = {}

    async def send(name: str, pool: SmtpPool) -> None:
        # caught inside the sending task, as the sender does
        try:
            await pool.send(make_envelope())
        except NotSent:
            seen[name] = "not sent"
            raise
        except asyncio.CancelledError:
            seen[name] = "cancelled"
            raise

    async with SmtpPool(smtp_settings(server, timeout_seconds=30.0), None) as pool:
        on_the_wire = asyncio.create_task(send("on the wire", pool))
        queued = asyncio.create_task(send("queued", pool))
        while handler.commands["MAIL"] == 0:
            await asyncio.sleep(0.01)
        on_the_wire.cancel()
        queued.cancel()
        await asyncio.gather(on_the_wire, queued, return_exceptions=True)
    assert seen == {"on the wire": "cancelled", "queued": "not sent"}
    assert issubclass(NotSent, asyncio.CancelledError)  # a cancellation to everyone else
    assert handler.commands["MAIL"] == 1


async def test_an_envelope_handed_to_a_stopping_connection_is_sent_by_another(
    smtp_server: Server, smtp_settings: Settings, make_envelope: MakeEnvelope
) -> None:
    server = smtp_server()
    async with SmtpPool(smtp_settings(server), None) as pool:
        assert (await pool.send(make_envelope())).outcome is Outcome.SENT
        [idle] = list(pool._connections)  # waiting for work
        sending = asyncio.create_task(pool.send(make_envelope()))
        await asyncio.sleep(0)  # the envelope is handed to the idle connection...
        idle.cancel()  # ...which is stopped before it could start on it
        result = await asyncio.wait_for(sending, 10)
    assert result.outcome is Outcome.SENT
    assert server.handler.connections == 2
