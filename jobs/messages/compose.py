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
from resolver.model import Delivery

__all__ = ["TOKYO", "Composed", "Composer", "envelope_sender"]

TOKYO = ZoneInfo("Asia/Tokyo")


def envelope_sender(from_header: str) -> str:
    """The SMTP MAIL FROM address: the address part of `message.from`."""
    _, address = parseaddr(from_header)
    if "@" not in address:
        raise ConfigError(
            tr("message.from {from_header!r} has no e-mail address", from_header=from_header)
        )
    return address


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
            )
        envelope_sender(self.message.from_)

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
        built = build_message(
            rendered,
            to_name=delivery.name,
            to_addr=delivery.email,
            from_=self.message.from_,
            reply_to=self.message.reply_to,
            message_id=mid,
            date=now if now is not None else datetime.now(TOKYO),
            charset=self.message.charset,
            campaign_id=self.campaign_id,
        )
        return Composed(delivery, mid, built.data, built.charset, built.fallback)
