"""From a delivery to the bytes on the wire: render, encode, address (SPEC §6).

One `Composer` per run serves the dry run, `preview` and the sender alike, so a dry run's
messages are byte for byte what `run` sends (apart from `Date`), with the same Message-IDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from jobs.config.settings import MessageSettings
from jobs.errors import ConfigError
from jobs.i18n import tr
from jobs.messages.mime import build_message, message_id
from jobs.messages.render import TemplateSet, build_context, sample_contexts
from jobs.messages.verp import ReturnPath
from resolver.model import Delivery
from resolver.normalize import normalize_email

__all__ = ["TOKYO", "Composed", "Composer", "copy_message_id", "envelope_sender"]

TOKYO = ZoneInfo("Asia/Tokyo")


def envelope_sender(from_header: str) -> str:
    """The SMTP MAIL FROM address: the address part of `message.from`."""
    _, address = parseaddr(from_header)
    if "@" not in address:
        raise ConfigError(
            tr("message.from {from_header!r} has no e-mail address", from_header=from_header)
        )
    return address


def copy_message_id(message_id: str) -> str:
    """The Message-ID of a test copy: never the real one, so its bounce matches no delivery."""
    return "<test." + message_id.removeprefix("<")


@dataclass(frozen=True, slots=True)
class Composed:
    """One message ready to send."""

    delivery: Delivery
    message_id: str
    data: bytes
    charset: str
    fallback: bool  # ISO-2022-JP could not carry the text; sent as UTF-8


@dataclass(frozen=True, slots=True)
class Composer:
    """Renders and encodes the messages of one run (campaign, run key, as-of date)."""

    campaign_id: str
    run_key: str
    as_of: date
    templates: TemplateSet
    message: MessageSettings
    test_to: str = ""  # §10 `test-send --to`: like `redirect_all_to`, for this composer only

    def check(self) -> None:
        """Fail on a broken template or header setting before anything is written or sent.

        Every sample context (one per audience) is rendered and encoded, so an unknown template
        name and a malformed `message.from`/`reply_to` are exit 2 up front, not on message one.
        """
        now = datetime.now(TOKYO)
        for context in sample_contexts(self.campaign_id, self.run_key, self.as_of):
            build_message(
                self.templates.render(context),
                to_name="確認 太郎",
                to_addr="check@example.jp",
                from_=self.message.from_,
                reply_to=self.message.reply_to,
                message_id=self.message_id("check"),
                date=now,
                charset=self.message.charset,
                campaign_id=self.campaign_id,
                original_to="check@example.jp" if self.redirect_to else None,
            )
        self.return_path()
        if self.redirect_to and normalize_email(self.redirect_to).address is None:
            raise ConfigError(f"message.redirect_all_to {self.redirect_to!r} is not one address")

    @property
    def redirect_to(self) -> str:
        """§10 `redirect_all_to` (or `test-send --to`): every message goes there instead."""
        return (self.test_to or self.message.redirect_all_to).strip()

    def return_path(self) -> ReturnPath:
        """The envelope sender of each delivery (§10 VERP; default: the From address).

        Test copies never carry a VERP token: a bounce of the test address must not touch the
        delivery of the person it stands in for.
        """
        from_address = envelope_sender(self.message.from_)
        if self.redirect_to or not self.message.return_path:
            return ReturnPath(from_address, None)
        return ReturnPath(self.message.return_path, self.message.verp_key())

    def recipient(self, delivery: Delivery) -> str:
        """The envelope recipient: the delivery's address, or the redirect address."""
        return self.redirect_to or delivery.email

    def message_id(self, delivery_key: str) -> str:
        return message_id(
            self.campaign_id, self.run_key, delivery_key, self.message.message_id_domain
        )

    def compose(
        self, delivery: Delivery, now: datetime | None = None, *, message_id: str | None = None
    ) -> Composed:
        """`message_id`: the one the ledger froze for this delivery (default: derived now)."""
        rendered = self.templates.render(
            build_context(delivery, self.campaign_id, self.run_key, self.as_of)
        )
        mid = message_id if message_id is not None else self.message_id(delivery.key)
        original_to: str | None = None
        if self.redirect_to:
            mid, original_to = copy_message_id(mid), delivery.email
        built = build_message(
            rendered,
            to_name=delivery.name,
            to_addr=self.recipient(delivery),
            from_=self.message.from_,
            reply_to=self.message.reply_to,
            message_id=mid,
            date=now if now is not None else datetime.now(TOKYO),
            charset=self.message.charset,
            campaign_id=self.campaign_id,
            original_to=original_to,
        )
        return Composed(delivery, mid, built.data, built.charset, built.fallback)
