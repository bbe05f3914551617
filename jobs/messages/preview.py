"""`preview` (SPEC §8): the message one recipient would receive, as the run would build it."""

from __future__ import annotations

import email
import email.policy
from datetime import date

import sqlalchemy as sa

from jobs.config.campaign import Campaign
from jobs.errors import NotFound
from jobs.messages.compose import Composed, Composer
from jobs.resolution.pipeline import resolve_campaign
from resolver.normalize import dedupe_key

__all__ = ["preview_messages", "render_preview"]


def preview_messages(
    engine: sa.Engine,
    campaign: Campaign,
    composer: Composer,
    address: str,
    *,
    as_of: date,
    extra_suppressed: frozenset[str] = frozenset(),
) -> list[Composed]:
    """Every delivery to `address` (several under `address_per_account`), composed."""
    composer.check()
    key = dedupe_key(address)
    if key is None:
        raise NotFound(f"{address!r} is not a valid e-mail address")
    with resolve_campaign(
        engine, campaign, as_of, extra_suppressed=extra_suppressed, progress=False
    ) as resolved:
        found = [d for d in resolved.deliveries if dedupe_key(d.email) == key]
    if not found:
        raise NotFound(
            f"{address} receives nothing in campaign {campaign.id} as of {as_of.isoformat()};"
            f" `explain --campaign {campaign.id} --email {address}` says why"
        )
    return [composer.compose(d) for d in found]


def render_preview(composed: Composed) -> str:
    """Decoded headers and the text part, as a person reads the message."""
    msg = email.message_from_bytes(composed.data, policy=email.policy.default)
    lines = [
        f"{name}: {msg[name]}"
        for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID")
        if msg[name]
    ]
    lines.append(
        f"Charset: {composed.charset}"
        + (" (fallback from ISO-2022-JP)" if composed.fallback else "")
    )
    body = msg.get_body(preferencelist=("plain",))
    lines.append("")
    # The wire's CRLF as the terminal's line ends: a lone CR left in is shown escaped by the CLI.
    text = body.get_content().replace("\r\n", "\n") if body is not None else "(no text part)"
    lines.append(text)
    html = msg.get_body(preferencelist=("html",))
    if html is not None:
        lines.append("[an HTML alternative is attached; use --raw to see the whole message]")
    return "\n".join(lines)
