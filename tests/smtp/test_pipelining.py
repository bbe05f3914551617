"""PIPELINING (RFC 2920) against real servers: Postfix's smtp-sink and a scripted server.

smtp-sink is a real pipelining relay (fetched by tools/postfix.py); the scripted server of
tests/pipelined_smtpd.py injects the faults inside a group that smtp-sink cannot (its reject
options turn PIPELINING off). Grouping is observed on the server side without timing anything:
the reply to a message's end of data is held until the client's next command arrives, which a
pipelining client has already written with the body.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.config.settings import SmtpSettings
from jobs.smtp import Envelope, Outcome, Phase, SendResult, SmtpPool
from tests.pipelined_smtpd import DROP, STALL, Log, PipelinedServer, Script
from tests.smtpd import TlsFiles
from tools.postfix import PostfixTools, SinkProcess

MakeEnvelope = Callable[..., Envelope]
HOLD = 1.0  # seconds a held reply waits for the next command; not reached when pipelining


def _settings(port: int, **overrides: object) -> SmtpSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "connections": 1,
        "timeout_seconds": 10.0,
    }
    return SmtpSettings(**{**base, **overrides})  # type: ignore[arg-type]


async def _send_all(pool: SmtpPool, envelopes: list[Envelope]) -> list[Outcome]:
    results = await asyncio.gather(*(pool.send(e) for e in envelopes))
    return [r.outcome for r in results]


async def _exchange(
    script: Script,
    envelopes: list[Envelope],
    *,
    ssl_context: ssl.SSLContext | None = None,
    **settings: object,
) -> tuple[list[SendResult], Log]:
    """Send `envelopes` at once over one connection to a scripted server; results and its log."""
    async with (
        PipelinedServer(script, ssl_context=ssl_context) as server,
        SmtpPool(_settings(server.port, **settings), None) as pool,
    ):
        results = await asyncio.gather(*(pool.send(e) for e in envelopes))
    return list(results), server.log


# smtp-sink


async def test_a_steady_stream_costs_one_round_trip_per_message(
    postfix: PostfixTools, make_envelope: MakeEnvelope, dump_dir: Path
) -> None:
    dumps = dump_dir
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(30)]
    with SinkProcess(postfix, "-d", f"{dumps}/%M.") as sink:
        async with SmtpPool(_settings(sink.port), None) as pool:
            results = await asyncio.gather(*(pool.send(e) for e in envelopes))
            round_trips, sessions = pool.round_trips, pool.sessions_opened
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.SENT] * 30, [r.text for r in results]
    # MAIL+RCPT+DATA of the first message, then each body with the next message's commands,
    # then the last body alone: 31 writes for 30 messages (one at a time would take 120).
    assert (round_trips, sessions) == (31, 1)
    dumped = sorted(p.read_bytes() for p in dumps.iterdir())
    assert len(dumped) == 30
    for envelope in envelopes:
        [dump] = [d for d in dumped if envelope.message_id.encode() in d]
        assert b"\n.a line that starts with a dot\n" in dump  # dot-stuffed on the wire


async def test_smtp_sink_hanging_up_after_end_of_data(
    postfix: PostfixTools, make_envelope: MakeEnvelope
) -> None:
    # -q .: smtp-sink disconnects after reading the first end of data, without a reply. The
    # second message's MAIL, RCPT and DATA went in the same write as that end of data.
    with SinkProcess(postfix, "-q", ".") as sink:
        async with SmtpPool(_settings(sink.port), None) as pool:
            first, second = await asyncio.gather(
                pool.send(make_envelope("a@example.jp")), pool.send(make_envelope("b@example.jp"))
            )
    assert (first.outcome, first.after_data, first.phase) == (Outcome.TRANSIENT, True, Phase.BODY)
    assert (second.outcome, second.after_data, second.phase) == (
        Outcome.TRANSIENT,
        False,
        Phase.MAIL,
    )


async def test_smtp_sink_without_pipelining_gets_one_command_at_a_time(
    postfix: PostfixTools, make_envelope: MakeEnvelope
) -> None:
    with SinkProcess(postfix, "-p") as sink:  # -p: PIPELINING not announced
        async with SmtpPool(_settings(sink.port), None) as pool:
            outcomes = await _send_all(pool, [make_envelope() for _ in range(5)])
            round_trips = pool.round_trips
    assert outcomes == [Outcome.SENT] * 5
    assert round_trips == 4 * 5  # MAIL, RCPT, DATA, body: each waited for


# the scripted server: faults inside a group


async def test_bodies_arrive_byte_for_byte_and_each_end_is_grouped(
    make_envelope: MakeEnvelope,
) -> None:
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(5)]
    results, log = await _exchange(Script(hold_end=HOLD), envelopes)
    outcomes = [r.outcome for r in results]
    assert outcomes == [Outcome.SENT] * 5
    assert log.bodies == [e.data for e in envelopes]
    # every end of data but the last had the next message's MAIL right behind it
    assert log.grouped == 4


async def test_a_refused_rcpt_then_554_to_data(make_envelope: MakeEnvelope) -> None:
    script = Script(rcpt={"gone@example.jp": "550 5.1.1 <gone@example.jp>: user unknown"})
    envelopes = [make_envelope(a) for a in ("a@example.jp", "gone@example.jp", "b@example.jp")]
    (a, gone, b), log = await _exchange(script, envelopes)
    assert (a.outcome, b.outcome) == (Outcome.SENT, Outcome.SENT)
    # the refusal is the recipient's own; the 554 that followed to DATA is not a second verdict
    assert (gone.outcome, gone.code, gone.phase) == (Outcome.PERMANENT, 550, Phase.RCPT)
    assert [r.hard_bounce for r in gone.recipients] == [True]
    verbs = log.verbs()
    # DATA went in the group anyway (pipelined), and RSET came before the next MAIL
    assert verbs[verbs.index("RCPT", 3) :][:4] == ["RCPT", "DATA", "RSET", "MAIL"]
    assert len(log.bodies) == 2
    assert log.connections == 1


async def test_a_4xx_to_mail_inside_a_group(make_envelope: MakeEnvelope) -> None:
    script = Script(mail={1: "451 4.3.0 try again later"})
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(3)]
    (first, refused, third), log = await _exchange(script, envelopes)
    assert (first.outcome, third.outcome) == (Outcome.SENT, Outcome.SENT)
    # the 503s to its RCPT and DATA follow from the refused MAIL: the 451 decides
    assert (refused.outcome, refused.code, refused.phase) == (Outcome.TRANSIENT, 451, Phase.MAIL)
    assert not refused.recipients[0].hard_bounce
    assert log.verbs().count("RCPT") == 3  # its RCPT was written in the group
    assert len(log.bodies) == 2
    assert log.connections == 1


@pytest.mark.parametrize(
    ("fault", "text"),
    [(DROP, "connection lost"), (STALL, "timed out")],
    ids=["hang-up", "no reply"],
)
async def test_a_stream_cut_after_an_end_of_data(
    make_envelope: MakeEnvelope, fault: str, text: str
) -> None:
    # No reply to the second end of data; the third message's commands went in the same write.
    script = Script(end={1: fault})
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(3)]
    (sent, unknown, unsent), log = await _exchange(script, envelopes, timeout_seconds=1.0)
    assert (sent.outcome, sent.after_data) == (Outcome.SENT, False)
    # only the message whose end of data was written has an unknown outcome
    assert (unknown.outcome, unknown.code, unknown.after_data, unknown.phase) == (
        Outcome.TRANSIENT,
        None,
        True,
        Phase.BODY,
    )
    assert text in unknown.text.lower()
    assert (unsent.outcome, unsent.after_data, unsent.phase) == (
        Outcome.TRANSIENT,
        False,
        Phase.MAIL,
    )
    assert len(log.bodies) == 1


async def test_354_without_a_recipient_is_ended_with_a_lone_dot(
    make_envelope: MakeEnvelope,
) -> None:
    # RFC 2920 §3.1: a server may accept DATA although every RCPT failed; the client must then
    # end the message at once instead of sending the body.
    script = Script(
        rcpt={"gone@example.jp": "550 5.1.1 user unknown"}, data_without_rcpt="354 go ahead"
    )
    envelopes = [make_envelope("gone@example.jp"), make_envelope("taro@example.jp")]
    (gone, taro), log = await _exchange(script, envelopes)
    assert (gone.outcome, gone.code, gone.phase) == (Outcome.PERMANENT, 550, Phase.RCPT)
    assert taro.outcome is Outcome.SENT
    assert log.bodies == [envelopes[1].data]
    assert log.connections == 1


async def test_pipelining_over_starttls_and_implicit_tls(
    make_envelope: MakeEnvelope, tls: TlsFiles
) -> None:
    envelopes = [make_envelope(f"user{i}@example.jp") for i in range(4)]
    script = Script(hold_end=HOLD, tls=tls.server_context)
    ca = str(tls.ca_file)
    results, log = await _exchange(script, envelopes, security="starttls", ca_file=ca)
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert (log.tls_sessions, log.grouped) == (1, 3)

    implicit = tls.server_context
    results, log = await _exchange(
        Script(hold_end=HOLD), envelopes, ssl_context=implicit, security="tls", ca_file=ca
    )
    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert log.grouped == 3


async def test_only_a_pipelining_relay_gets_commands_ahead_of_replies(
    make_envelope: MakeEnvelope,
) -> None:
    # Every reply is held briefly; a command arriving meanwhile was written before its
    # predecessor's reply. With PIPELINING offered that happens; without, never.
    counts = {}
    for pipelining in (False, True):
        script = Script(pipelining=pipelining, hold_each=0.2)
        results, log = await _exchange(script, [make_envelope(), make_envelope()])
        assert [r.outcome for r in results] == [Outcome.SENT] * 2
        counts[pipelining] = log.early
    assert counts[False] == 0
    assert counts[True] > 0


async def test_a_421_sent_while_idle_costs_no_attempt(make_envelope: MakeEnvelope) -> None:
    # An idle timeout: the server says 421 between messages but keeps the socket open a while.
    async with (
        PipelinedServer(Script()) as server,
        SmtpPool(_settings(server.port), None) as pool,
    ):
        first = await pool.send(make_envelope())
        await server.say_to_all(b"421 4.4.2 idle timeout\r\n")
        second = await pool.send(make_envelope())
        sessions = pool.sessions_opened
    assert (first.outcome, second.outcome) == (Outcome.SENT, Outcome.SENT)
    assert sessions == 2
    # nothing was written to the session that had said goodbye: the next word is a new EHLO
    verbs = server.log.verbs()
    assert verbs[verbs.index(".\r\n") + 1] == "EHLO"
