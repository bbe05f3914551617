"""One message's transaction read reply by reply: MAIL, RCPT per recipient, DATA, end of data.

The same object serves both dialogues (STYLE: one reading of every reply):
- one command at a time, where a refused MAIL or a recipient-less RCPT stops the commands;
- PIPELINING (RFC 2920), where MAIL, every RCPT and DATA were written together and each reply
  still arrives: a reply that only follows from an earlier refusal (503 after a refused MAIL,
  554 to DATA after every RCPT was refused) is read and set aside, never classified as the
  message's own fate.

It writes nothing itself: `commands` are the bytes for the connection to send, and each
`on_*` method takes the reply to one of them. Failures go through `classify`, exactly as when
they are raised by aiosmtplib. `failed` turns a lost connection or a timeout into the result
for the phase the transaction had reached: only after its end of data was written is the
outcome unknown (`after_data`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

from aiosmtplib import (
    SMTPDataError,
    SMTPRecipientRefused,
    SMTPResponse,
    SMTPSenderRefused,
)
from aiosmtplib.email import quote_address

from jobs.smtp.classify import Verdict, classify, one_line
from jobs.smtp.envelope import Envelope, Outcome, Phase, RecipientResult, SendResult, crlf
from jobs.smtp.errors import SmtpSetupError

__all__ = ["DATA", "Extensions", "Next", "Transaction"]

DATA = b"DATA\r\n"
_OK = 250
_FORWARD = 251
_START_INPUT = 354
# An addr-spec that aiosmtplib's `quote_address` would return as `<addr-spec>`, unchanged: a
# dot-atom-like local part and a host name, no space, quote, bracket or comment, ASCII only.
# Checked against aiosmtplib itself by tests/smtp/test_commands.py.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class Extensions:
    """What the relay's EHLO offered that changes the commands we write."""

    size: bool = False
    eight_bit_mime: bool = False
    smtputf8: bool = False
    pipelining: bool = False


class Next(Enum):
    """What the connection does after the reply to DATA."""

    BODY = "body"  # 354 and a recipient accepted: send the message
    EMPTY = "empty"  # 354 but nothing to send it to: end it with a lone dot (RFC 2920 §3.1)
    RESET = "reset"  # DATA refused: the transaction is over here; RSET before the next MAIL


def _address(address: str, encoding: str) -> bytes:
    """The `<addr>` argument as aiosmtplib's `mail`/`rcpt` would write it."""
    if _PLAIN_ADDRESS.fullmatch(address) is not None:
        # `quote_address` runs `email.utils.parseaddr` (about 10 µs); for a plain address its
        # result is the address itself, the same bytes in ASCII and in UTF-8.
        return b"<" + address.encode("ascii") + b">"
    return quote_address(address).encode(encoding)


@dataclass(slots=True, eq=False)
class Transaction:
    """The state of one envelope's attempt; `result` is set once its fate is known."""

    envelope: Envelope
    server: str
    body: bytes = b""  # the message as it travels (CRLF), before dot-stuffing
    mail: bytes = b""  # the MAIL command line
    rcpts: list[tuple[str, bytes]] = field(default_factory=list)  # (address, RCPT line)
    phase: Phase = Phase.MAIL
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, RecipientResult] = field(default_factory=dict)
    result: SendResult | None = None
    mail_refused: bool = False
    rcpt_replies: int = 0

    @classmethod
    def start(cls, envelope: Envelope, extensions: Extensions, server: str) -> Transaction:
        """The commands for `envelope`; `result` is already set when it cannot be sent at all."""
        txn = cls(envelope, server)
        # once: SIZE counts it, the wire carries it dot-stuffed
        body = envelope.data if envelope.crlf_form else crlf(envelope.data)
        options: list[bytes] = []
        if extensions.size:
            options.append(b"SIZE=%d" % len(body))
        if extensions.eight_bit_mime and not envelope.data.isascii():
            options.append(b"BODY=8BITMIME")
        encoding = "ascii"
        if not all(a.isascii() for a in (envelope.sender, *envelope.recipients)):
            if not extensions.smtputf8:
                text = f"{server} does not support SMTPUTF8 (non-ASCII address)"
                results = tuple(
                    RecipientResult(r, Outcome.PERMANENT, None, text) for r in envelope.recipients
                )
                txn.result = SendResult.of(results, None, text, phase=Phase.MAIL)
                return txn
            options.append(b"SMTPUTF8")
            encoding = "utf-8"
        txn.body = body
        txn.mail = b" ".join((b"MAIL FROM:" + _address(envelope.sender, encoding), *options))
        txn.mail += b"\r\n"
        for address in envelope.recipients:
            try:
                txn.rcpts.append((address, b"RCPT TO:" + _address(address, encoding) + b"\r\n"))
            except ValueError as exc:
                # The client refuses to put this address in a command: only it is affected.
                txn._refuse(address, classify(exc, Phase.RCPT, server))
        if not txn.rcpts:
            txn._settle_refused()
        return txn

    @property
    def commands(self) -> bytes:
        """MAIL and every RCPT, as one write (without DATA)."""
        return self.mail + b"".join(line for _, line in self.rcpts)

    def on_mail(self, reply: SMTPResponse) -> bool:
        """The reply to MAIL; False when the transaction is over (refused)."""
        if reply.code == _OK:
            self.phase = Phase.RCPT
            return True
        error = SMTPSenderRefused(reply.code, reply.message, self.envelope.sender)
        self.mail_refused = True
        self.result = self._failed(self._verdict(error, Phase.MAIL))
        return False

    def on_rcpt(self, address: str, reply: SMTPResponse) -> None:
        """The reply to one RCPT; after a refused MAIL it only follows from that refusal."""
        self.rcpt_replies += 1
        if self.mail_refused:
            return
        if self.rcpt_replies == len(self.rcpts):
            self.phase = Phase.DATA  # what is awaited next is DATA's reply
        if reply.code in (_OK, _FORWARD):
            self.accepted.append(address)
            return
        error = SMTPRecipientRefused(reply.code, reply.message, address)
        self._refuse(address, classify(error, Phase.RCPT, self.server))

    def no_recipient(self) -> bool:
        """Every RCPT was refused: DATA has nothing to carry (the result is the refusals)."""
        if self.accepted or self.mail_refused:
            return False
        self._settle_refused()
        return True

    def on_data(self, reply: SMTPResponse) -> Next:
        """The reply to DATA. Without an accepted recipient its refusal is no news of its own."""
        started = reply.code == _START_INPUT
        if self.result is None and not self.accepted:
            self._settle_refused()
        if self.result is not None:
            return Next.EMPTY if started else Next.RESET
        if started:
            self.phase = Phase.DATA  # BODY once the connection has written it (`body_sent`)
            return Next.BODY
        error = SMTPDataError(reply.code, reply.message)
        self.result = self._failed(self._verdict(error, Phase.DATA))
        return Next.RESET

    def body_sent(self) -> None:
        """Body and end-of-data line are on the wire: a failure now is an unknown outcome."""
        self.phase = Phase.BODY

    def on_end(self, reply: SMTPResponse) -> SendResult:
        """The reply to the end of data: the server's answer for every accepted recipient."""
        if reply.code != _OK:
            verdict = self._verdict(SMTPDataError(reply.code, reply.message), Phase.BODY)
            self.result = self._failed(verdict)
            return self.result
        text = one_line(reply.message)
        results = tuple(
            self.refused.get(r) or RecipientResult(r, Outcome.SENT, reply.code, text)
            for r in self.envelope.recipients
        )
        self.result = SendResult.of(results, reply.code, text)
        return self.result

    def failed(self, error: BaseException) -> SendResult:
        """The result when the connection failed (`error`) before the fate was known."""
        if self.result is None:
            self.result = self._failed(self._verdict(error, self.phase))
        return self.result

    @classmethod
    def unsent(cls, envelope: Envelope, verdict: Verdict, server: str) -> SendResult:
        """The result for an envelope that never got a session (connect, STARTTLS, AUTH)."""
        txn = cls(envelope, server, phase=verdict.phase)
        return txn._failed(verdict)

    def _verdict(self, error: BaseException, phase: Phase) -> Verdict:
        verdict = classify(error, phase, self.server)
        if verdict.setup_error is not None:
            raise SmtpSetupError(verdict.setup_error)
        return verdict

    def _refuse(self, address: str, verdict: Verdict) -> None:
        self.refused[address] = RecipientResult(
            address, verdict.outcome, verdict.code, verdict.text, verdict.hard_bounce
        )

    def _settle_refused(self) -> None:
        first = self.refused[self.envelope.recipients[0]]
        results = tuple(self.refused[r] for r in self.envelope.recipients)
        self.result = SendResult.of(results, first.code, first.text, phase=Phase.RCPT)

    def _failed(self, verdict: Verdict) -> SendResult:
        """Recipients refused on their own keep their reply; the others share `verdict`."""
        # A reply after DATA names no recipient: it is a hard bounce only when there was one.
        sole = len(self.accepted) == 1 or verdict.phase not in (Phase.DATA, Phase.BODY)
        bounce = verdict.hard_bounce and sole
        results = tuple(
            self.refused.get(r)
            or RecipientResult(r, verdict.outcome, verdict.code, verdict.text, bounce)
            for r in self.envelope.recipients
        )
        return SendResult.of(
            results, verdict.code, verdict.text, after_data=verdict.after_data, phase=verdict.phase
        )
