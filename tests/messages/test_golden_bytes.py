"""Exact bytes: messages and their wire form are pinned to what the first implementation produced.

The send path was later made cheaper (cached header lines, one base64 pass per body, a plain-dict
template globals map, CRLF and dot-stuffing without regular expressions); none of that may change
a byte. The digests below were computed with the code before those changes, for a fixed Date,
over a template set that uses layouts, includes, imports, loops, escaping and filters, in both
charsets, with a JIS fallback, a long JIS line (base64), a text line starting with a dot, and
several From/Reply-To settings.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from jobs.config.settings import MessageSettings
from jobs.messages.compose import TOKYO, Composer
from jobs.messages.render import load_template_set
from jobs.smtp.envelope import crlf, wire_body
from resolver.model import Audience, Reason, Source
from tests.messages.builders import (
    AS_OF,
    CAMPAIGN,
    RUN_KEY,
    customer_account,
    delivery,
    partner_account,
)

WHEN = datetime(2026, 12, 1, 9, 30, 5, 123456, tzinfo=TOKYO)

TEMPLATES = {
    "_layouts/base.txt.j2": (
        "{% for account in recipient.accounts %}\n{{ account.name }}\n{% endfor %}\n"
        '{{ recipient.name ~ " 様" if recipient.name else "ご担当者様" }}\n\n'
        "{% block body %}{% endblock %}\n\n"
        '{% include "_layouts/footer.txt.j2" %}'
    ),
    "_layouts/footer.txt.j2": (
        '{% from "_layouts/labels.j2" import why %}'
        '{% set kinds = recipient.accounts | map(attribute="kind") | list %}'
        "――――\n{% for code in recipient.reasons %}・{{ why[code] }}\n{% endfor %}"
        '{% if "partner" in kinds %}partner\n{% endif %}{{ recipient.email }}\n'
    ),
    "_layouts/labels.j2": (
        '{% set why = {"MYPAGE_CONTACT": "ご契約責任者のため", "SYSTEM_ADMIN": "管理者のため",'
        ' "PARTNER_CONTACT": "パートナーご担当者のため"} %}'
    ),
    "_layouts/base.html.j2": (
        "<html><body><p>\n{% for account in recipient.accounts %}\n{{ account.name }}<br>\n"
        "{% endfor %}\n{{ recipient.name }} 様</p>\n{% block body %}{% endblock %}\n"
        '{% include "_layouts/footer.html.j2" %}</body></html>\n'
    ),
    "_layouts/footer.html.j2": (
        '{% from "_layouts/labels.j2" import why %}<ul>\n'
        "{% for code in recipient.reasons %}<li>{{ why[code] }}</li>\n{% endfor %}</ul>\n"
        "{% for account in recipient.accounts %}{{ account.id }}:"
        '{% for role in account.roles %}{{ "" if loop.first else "、" }}{{ role }}{% endfor %}\n'
        "{% endfor %}"
    ),
    "g/_details.j2": '{% set start = "2026年12月19日（土）22:00" %}',
    "g/subject.txt.j2": (
        '{% from "_details.j2" import start %}【SmileWorks】定期メンテナンス（{{ start }}〜）'
    ),
    "g/body.txt.j2": (
        '{% extends "_layouts/base.txt.j2" %}{% from "_details.j2" import start %}'
        "{% block body %}\n{{ start }}に実施します。\n.この行はドットで始まります\n"
        '{% if recipient.audience == "partner" %}{{ "長" * 600 }}\n{% endif %}{% endblock %}'
    ),
    "g/body.html.j2": (
        '{% extends "_layouts/base.html.j2" %}{% from "_details.j2" import start %}'
        "{% block body %}<p>{{ start }}に実施します。</p>\n{% endblock %}"
    ),
}

DELIVERIES = [
    delivery(
        customer_account(roles=(Source.MYPAGE_CONTRACT_MANAGER, Source.SYSTEM_ADMIN)),
        reasons=(Reason.MYPAGE_CONTACT, Reason.SYSTEM_ADMIN),
    ),
    delivery(
        customer_account(name="<株式会社 & 東西>"),
        partner_account(),
        reasons=(Reason.MYPAGE_CONTACT, Reason.PARTNER_CONTACT),
        name="",
        email="no.name@example.jp",
    ),
    delivery(
        partner_account(name="合同会社𠮷野家システム"),  # not in JIS X 0208: UTF-8 fallback
        reasons=(Reason.PARTNER_CONTACT,),
        audience=Audience.PARTNER,
        name="𠮷田 太郎",
        email="yoshida@example.jp",
    ),
    delivery(
        partner_account(),
        reasons=(Reason.PARTNER_CONTACT,),
        audience=Audience.PARTNER,
        name="Taro Yamada",
        email="taro@example.jp",
    ),
]

SETTINGS = {
    "utf-8": MessageSettings(),
    "iso-2022-jp": MessageSettings(charset="iso-2022-jp"),
    "no-reply-to": MessageSettings(reply_to=""),
    "ascii-from": MessageSettings(
        from_='"SmileWorks, Office" <info@smileworks.example.jp>',
        reply_to="Support Desk <support@smileworks.example.jp>",
        charset="iso-2022-jp",
    ),
}

# sha256 of (message bytes, wire form) per settings, one pair per delivery above.
EXPECTED: dict[str, list[tuple[str, str]]] = {
    "utf-8": [
        ("1d10db47898c5ca212f80a4c12d8a520", "5e90376a08b5b05cd8b1ddce546815bf"),
        ("ca6defd2013fcc05a3d2c8f4b8064a6d", "3b4baba9c3b67c6bc99c5d5c44f4f810"),
        ("f41fc2696cc4193c12f0c8e877445775", "2764f9f83ce44c26afe302dd54052aaa"),
        ("0d38f364aa85d9ccbfa4be1ccf886ed2", "67d8b49664ec3ca783fbc7f1e9be7994"),
    ],
    "iso-2022-jp": [
        ("154e180f3e8fc90389a9c77871c9fa44", "272e5d5bfc277e6d05b4ff7f330eabbc"),
        ("1ae519b21d0614836a524c8dc5ad3623", "6bcb491fdfcd7d4d2c5e693cad015e4c"),
        ("f41fc2696cc4193c12f0c8e877445775", "2764f9f83ce44c26afe302dd54052aaa"),  # fallback
        ("e4ea6c14369c369a2c7ce476be68c2ab", "53e6dc9cd8ca4db225fe6c5c3e277b65"),
    ],
    "no-reply-to": [
        ("0e26e600f790cbd3d6e3c098e13538f5", "17ecda1a0d9092a8d258597039255a30"),
        ("38e9da92d38b769b4658ed5aba6b4a60", "b980851ac5f4444e36ddd06bb15e1721"),
        ("9e3e61d6a9f404490e9f20661bf72af4", "7a004834119e0ef67e8a30faf84eb7ea"),
        ("15d69a6a82127d3f3e9214f236841847", "f72897693ba8b77e6713eb5f94a02cd9"),
    ],
    "ascii-from": [
        ("964603d04e8004fa00279e8bb9bd964f", "ba8747259e036ca8eb22c915479fb30a"),
        ("ab452ac80c10519dc5c6b4675b1831a6", "ac4af256c2f6694b9c768d08ed60b910"),
        ("654f69e3feecb6c3bbee4e496e6e7c3d", "92951871c8dbe95f8ed695c714193ffb"),
        ("2414d454b270f9269212cb6131d774ad", "54bec7c2bbd750584dc6ecc2eb2ecd17"),
    ],
}


def compose_all(root: Path, settings: MessageSettings) -> list[bytes]:
    for rel, text in TEMPLATES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    templates = load_template_set(root, "g", root)
    composer = Composer(CAMPAIGN, RUN_KEY, AS_OF, templates, settings)
    return [composer.compose(d, WHEN).data for d in DELIVERIES]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_message_bytes_are_unchanged(tmp_path: Path, name: str) -> None:
    messages = compose_all(tmp_path, SETTINGS[name])
    assert [(digest(m), digest(wire_body(m))) for m in messages] == EXPECTED[name]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_built_messages_are_already_in_wire_line_form(tmp_path: Path, name: str) -> None:
    # The sender marks the composer's bytes `crlf_form`, so the SMTP layer skips normalizing them.
    for message in compose_all(tmp_path, SETTINGS[name]):
        assert crlf(message) is message
