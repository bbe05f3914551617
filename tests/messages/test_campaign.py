"""The shipped maintenance-notice campaign: its file, and what each kind of recipient reads."""

from __future__ import annotations

import email
import html
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest

from jobs.config.campaign import load_campaign
from jobs.messages.mime import build_message
from jobs.messages.render import Rendered, TemplateSet, load_template_set, sample_contexts
from resolver.model import AccountRef, Audience, Reason, Source
from tests.messages.builders import (
    AS_OF,
    CAMPAIGN,
    RUN_KEY,
    context,
    customer_account,
    delivery,
    partner_account,
)

CUSTOMER = Audience.CUSTOMER
REPO = Path(__file__).resolve().parents[2]
CAMPAIGN_FILE = REPO / "config" / "campaigns" / "maintenance-notice.toml"

WHY = {
    Reason.MYPAGE_CONTACT: "マイページのご契約責任者・請求担当者としてご登録いただいているため",
    Reason.SYSTEM_ADMIN: "システム管理者権限をお持ちのユーザーとしてご登録いただいているため",
    Reason.LEGACY_ADMIN: "管理者ユーザーID「admin」のメールアドレスとしてご登録いただいているため",
    Reason.PARTNER_CONTACT: "パートナーご担当者としてご登録いただいているため",
    Reason.CERTIFIED_IMPLEMENTER: "導入支援パートナー認定者としてご登録いただいているため",
}
CUSTOMER_HOW = ("マイページ > 会社基本設定", "設定 > 共通設定 > ユーザ管理")
PARTNER_HOW = "パートナー事務局までご連絡ください"


@pytest.fixture(scope="module")
def templates() -> TemplateSet:
    campaign = load_campaign(CAMPAIGN_FILE)
    return load_template_set(REPO / "templates", campaign.template, campaign.folder)


def both_bodies(rendered: Rendered) -> tuple[str, str]:
    assert rendered.html is not None
    return rendered.text, html.unescape(rendered.html)


def test_campaign_file_matches_the_spec() -> None:
    campaign = load_campaign(CAMPAIGN_FILE)

    assert campaign.id == CAMPAIGN == CAMPAIGN_FILE.stem
    assert campaign.template == "maintenance-notice"
    assert campaign.policy.audiences == frozenset(Audience)
    assert campaign.policy.dedupe.value == "address"
    assert campaign.policy.plans is None and campaign.policy.products is None
    assert campaign.schedule is None  # sent by hand until nightly scheduling is wanted
    assert campaign.expires_after_hours == 24


def test_shipped_templates_pass_the_check(templates: TemplateSet) -> None:
    templates.check(*sample_contexts(CAMPAIGN, RUN_KEY, AS_OF))

    assert templates.has_html


def test_customer_with_two_accounts(templates: TemplateSet) -> None:
    d = delivery(
        customer_account("C070000001", "株式会社東西青空", (Source.MYPAGE_CONTRACT_MANAGER,)),
        customer_account(
            "C070000009", "株式会社北南商事", (Source.MYPAGE_BILLING, Source.SYSTEM_ADMIN)
        ),
        reasons=(Reason.MYPAGE_CONTACT, Reason.SYSTEM_ADMIN),
    )

    rendered = templates.render(context(d))

    assert rendered.subject == (
        "【SmileWorks】定期メンテナンス実施のお知らせ（2026年12月19日（土）22:00〜）"
    )
    for body in both_bodies(rendered):
        assert "斎藤 誠 様" in body
        assert "株式会社東西青空 様（ID：C070000001）：マイページ ご契約責任者" in body
        assert (
            "株式会社北南商事 様（ID：C070000009）：マイページ 請求担当者、システム管理者権限"
            in body
        )
        assert WHY[Reason.MYPAGE_CONTACT] in body and WHY[Reason.SYSTEM_ADMIN] in body
        assert WHY[Reason.LEGACY_ADMIN] not in body
        assert all(path in body for path in CUSTOMER_HOW)
        assert PARTNER_HOW not in body
        assert "パートナーの皆様へ" not in body
        for service in ("販売ワークス", "会計ワークス", "給与ワークス"):
            assert service in body
        assert "2026年12月19日（土）22:00 〜 2026年12月20日（日）6:00（日本時間）" in body
    text, page = both_bodies(rendered)
    assert text.startswith("株式会社東西青空\n株式会社北南商事\n斎藤 誠 様\n")
    assert text.endswith("\nSmileWorks事務局\n")  # signed by the office
    assert "株式会社東西青空<br>\n株式会社北南商事<br>\n斎藤 誠 様" in page
    assert '<p style="margin:0;font-weight:bold;color:#333333;">SmileWorks事務局</p>' in page


def test_partner_contact(templates: TemplateSet) -> None:
    d = delivery(
        partner_account(),
        reasons=(Reason.PARTNER_CONTACT,),
        audience=Audience.PARTNER,
        name="山口 大輔",
    )

    for body in both_bodies(templates.render(context(d))):
        assert "合同会社大和システム 様（ID：P0700004）：パートナーご担当者" in body
        assert WHY[Reason.PARTNER_CONTACT] in body
        assert "パートナー事務局にて管理しております" in body and PARTNER_HOW in body
        assert not any(path in body for path in CUSTOMER_HOW)
        assert "パートナーの皆様へ" in body


@pytest.mark.parametrize(
    ("reason", "audience", "account"),
    [
        (Reason.MYPAGE_CONTACT, CUSTOMER, customer_account(roles=(Source.MYPAGE_BILLING,))),
        (Reason.SYSTEM_ADMIN, CUSTOMER, customer_account(roles=(Source.SYSTEM_ADMIN,))),
        (Reason.LEGACY_ADMIN, CUSTOMER, customer_account(roles=(Source.LEGACY_ADMIN,))),
        (Reason.PARTNER_CONTACT, Audience.PARTNER, partner_account()),
        (
            Reason.CERTIFIED_IMPLEMENTER,
            Audience.IMPLEMENTATION_PARTNER,
            partner_account(roles=(Source.CERTIFIED_IMPLEMENTER,)),
        ),
    ],
)
def test_footer_says_why_and_how_for_each_include_code(
    templates: TemplateSet, reason: Reason, audience: Audience, account: AccountRef
) -> None:
    d = delivery(account, reasons=(reason,), audience=audience)

    for body in both_bodies(templates.render(context(d))):
        assert WHY[reason] in body
        assert [code for code, sentence in WHY.items() if sentence in body] == [reason]
        if audience is Audience.CUSTOMER:
            assert all(path in body for path in CUSTOMER_HOW) and PARTNER_HOW not in body
        else:
            assert PARTNER_HOW in body and not any(path in body for path in CUSTOMER_HOW)


def test_html_escapes_data_from_the_source(templates: TemplateSet) -> None:
    d = delivery(customer_account(name="<script>alert(1)</script>"), name="<b>太郎</b>")

    rendered = templates.render(context(d))

    assert rendered.html is not None
    assert "<script>" not in rendered.html and "<b>太郎" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


def test_shipped_wording_fits_iso_2022_jp(templates: TemplateSet) -> None:
    """No template character forces the UTF-8 fallback; only data can."""
    for ctx in sample_contexts(CAMPAIGN, RUN_KEY, AS_OF):
        rendered = templates.render(ctx)
        built = build_message(
            rendered,
            to_name=ctx["recipient"].name,
            to_addr=ctx["recipient"].email,
            from_="SmileWorks事務局 <info@smileworks.example.jp>",
            reply_to="support@smileworks.example.jp",
            message_id="<0@mailer.smileworks.example.jp>",
            date=datetime(2026, 12, 1, 9, tzinfo=timezone(timedelta(hours=9))),
            charset="iso-2022-jp",
            campaign_id=CAMPAIGN,
        )
        message = email.message_from_bytes(built.data, policy=policy.default)

        assert not built.fallback
        assert message["Subject"] == rendered.subject
        plain = message.get_body(("plain",))
        assert plain is not None
        assert plain.get_content().replace("\r\n", "\n") == rendered.text
