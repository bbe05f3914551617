"""jobs.messages.render: the sandboxed template set, its context, errors naming file and line."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from jobs.errors import TemplateError
from jobs.messages.render import (
    AccountView,
    CampaignView,
    RecipientView,
    TemplateSet,
    build_context,
    load_template_set,
    sample_contexts,
)
from resolver.model import Audience, Reason, Source
from tests.messages.builders import (
    AS_OF,
    CAMPAIGN,
    RUN_KEY,
    context,
    customer_account,
    delivery,
    partner_account,
)

# trim_blocks eats the newline after a block tag, hence the blank line before the footer.
BASE_TXT = "Dear {{ recipient.name }}\n{% block body %}{% endblock %}\n\n-- footer\n"


def write_templates(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    write_templates(templates, "_layouts", {"base.txt.j2": BASE_TXT})
    return templates


def simple_set(
    root: Path, body: str, *, subject: str = "S {{ campaign.id }}", html: str | None = None
) -> TemplateSet:
    files = {"subject.txt.j2": subject, "body.txt.j2": body}
    if html is not None:
        files["body.html.j2"] = html
    write_templates(root, "x", files)
    return load_template_set(root, "x", root.parent / "config" / "campaigns")


# --- context ----------------------------------------------------------------------------------


def test_context_has_exactly_the_spec_names_as_plain_values() -> None:
    d = delivery(
        customer_account(roles=(Source.MYPAGE_BILLING, Source.SYSTEM_ADMIN)),
        partner_account(),
        reasons=(Reason.MYPAGE_CONTACT, Reason.SYSTEM_ADMIN, Reason.PARTNER_CONTACT),
    )
    ctx = build_context(d, "c1", "rk", date(2026, 12, 1))

    assert set(ctx) == {"recipient", "campaign"}
    r = ctx["recipient"]
    assert isinstance(r, RecipientView)
    assert (r.name, r.email, r.audience) == ("斎藤 誠", "makoto.saito@example.co.jp", "customer")
    assert r.reasons == ("MYPAGE_CONTACT", "SYSTEM_ADMIN", "PARTNER_CONTACT")
    assert all(type(code) is str for code in r.reasons)  # plain str, not the enum
    a0, a1 = r.accounts
    assert isinstance(a0, AccountView)
    assert (a0.kind, a0.id, a0.name, a0.roles) == (
        "customer",
        "C070000001",
        "株式会社東西青空",
        ("mypage_billing", "system_admin"),
    )
    assert (a0.postal_code, a0.address) == ("664-7955", "東京都千代田区2-8-19")
    assert type(a0.kind) is str and all(type(role) is str for role in a0.roles)
    assert (a1.kind, a1.id) == ("partner", "P0700004")
    assert ctx["campaign"] == CampaignView(id="c1", run_key="rk", as_of=date(2026, 12, 1))


def test_render_reads_every_context_name(root: Path) -> None:
    body = (
        "{{ recipient.name }}|{{ recipient.email }}|{{ recipient.audience }}|"
        "{{ recipient.reasons | join(',') }}\n"
        "{% for a in recipient.accounts %}{{ a.kind }}:{{ a.id }}:{{ a.name }}:"
        "{{ a.roles | join('+') }}:{{ a.postal_code }}:{{ a.address }}\n{% endfor %}"
        "{{ campaign.id }}|{{ campaign.run_key }}|{{ campaign.as_of.strftime('%Y/%m/%d') }}\n"
    )
    ts = simple_set(root, body)
    d = delivery(
        customer_account(roles=(Source.LEGACY_ADMIN,)),
        reasons=(Reason.LEGACY_ADMIN,),
    )

    text = ts.render(context(d)).text

    assert text == (
        "斎藤 誠|makoto.saito@example.co.jp|customer|LEGACY_ADMIN\n"
        "customer:C070000001:株式会社東西青空:legacy_admin:664-7955:東京都千代田区2-8-19\n"
        f"{CAMPAIGN}|{RUN_KEY}|2026/12/01\n"
    )


def test_subject_is_one_trimmed_line(root: Path) -> None:
    ts = simple_set(root, "b", subject="\n  お知らせ\n（{{ campaign.id }}）  \n\n")

    assert ts.render(context(delivery())).subject == f"お知らせ （{CAMPAIGN}）"


def test_text_only_set_renders_no_html(root: Path) -> None:
    ts = simple_set(root, "b")

    assert not ts.has_html
    assert ts.render(context(delivery())).html is None


# --- errors name the template file and line ---------------------------------------------------


def test_unknown_attribute_names_file_and_line(root: Path) -> None:
    ts = simple_set(root, "line one\nline two\n{{ recipient.nmae }}\n")

    with pytest.raises(TemplateError) as caught:
        ts.check(context(delivery()))

    err = caught.value
    assert err.line == 3
    assert err.file is not None and err.file.endswith("templates/x/body.txt.j2")
    assert str(err).endswith("x/body.txt.j2, line 3: 'recipient' has no attribute 'nmae'")
    assert err.exit_code == 2


def test_unknown_variable_in_a_layout_names_the_layout(root: Path) -> None:
    write_templates(
        root, "_layouts", {"base.txt.j2": "top\n{% block body %}{% endblock %}\n{{ campain.id }}\n"}
    )
    ts = simple_set(root, '{% extends "_layouts/base.txt.j2" %}{% block body %}ok{% endblock %}')

    with pytest.raises(TemplateError) as caught:
        ts.check(context(delivery()))

    assert caught.value.file is not None
    assert caught.value.file.endswith("_layouts/base.txt.j2")
    assert caught.value.line == 3
    assert "'campain' is undefined" in str(caught.value)


def test_unknown_account_attribute_is_named_for_the_operator(root: Path) -> None:
    ts = simple_set(root, "{% for a in recipient.accounts %}{{ a.company }}{% endfor %}")

    with pytest.raises(TemplateError, match=r"line 1: 'recipient.accounts\[…\]' has no attribute"):
        ts.render(context(delivery()))


def test_check_fails_on_a_branch_only_another_sample_takes(root: Path) -> None:
    ts = simple_set(
        root, "{% if recipient.audience == 'partner' %}{{ recipient.partner_id }}{% endif %}ok"
    )
    customer_only = context(delivery())
    ts.check(customer_only)  # the customer branch is fine

    with pytest.raises(TemplateError, match="has no attribute 'partner_id'"):
        ts.check(*sample_contexts(CAMPAIGN, RUN_KEY, AS_OF))


def test_syntax_error_names_file_and_line_at_load(root: Path) -> None:
    write_templates(root, "x", {"subject.txt.j2": "s", "body.txt.j2": "a\nb\n{{ x + }}\nc\n"})

    with pytest.raises(TemplateError) as caught:
        load_template_set(root, "x", root)

    assert caught.value.line == 3
    assert caught.value.file is not None and caught.value.file.endswith("x/body.txt.j2")


def test_syntax_error_in_a_layout_is_found_by_check(root: Path) -> None:
    write_templates(root, "_layouts", {"base.txt.j2": "{% block body %}{% endblock %}\n{{ }}\n"})
    ts = simple_set(root, '{% extends "_layouts/base.txt.j2" %}{% block body %}b{% endblock %}')

    with pytest.raises(TemplateError) as caught:
        ts.check(context(delivery()))

    assert caught.value.file is not None and caught.value.file.endswith("_layouts/base.txt.j2")
    assert caught.value.line == 2


def test_missing_layout_names_the_extending_template(root: Path) -> None:
    ts = simple_set(root, '\n{% extends "_layouts/nope.txt.j2" %}')

    expected = "body.txt.j2, line 2: template '_layouts/nope.txt.j2' not found"
    with pytest.raises(TemplateError, match=re.escape(expected)):
        ts.check(context(delivery()))


def test_runtime_error_in_template_is_a_template_error(root: Path) -> None:
    ts = simple_set(root, "ok\n{{ 1 // 0 }}")

    with pytest.raises(TemplateError, match=r"line 2: ZeroDivisionError"):
        ts.render(context(delivery()))


def test_missing_folder_and_missing_subject_are_template_errors(root: Path) -> None:
    with pytest.raises(TemplateError, match=r"template folder .*nope does not exist"):
        load_template_set(root, "nope", root)
    write_templates(root, "nosubject", {"body.txt.j2": "b"})
    with pytest.raises(TemplateError, match=re.escape("subject.txt.j2 is missing")):
        load_template_set(root, "nosubject", root)


def test_bom_of_a_notepad_file_is_not_part_of_the_subject(root: Path) -> None:
    write_templates(root, "x", {"body.txt.j2": "b"})
    (root / "x" / "subject.txt.j2").write_bytes("\ufeffお知らせ".encode())

    ts = load_template_set(root, "x", root)

    assert ts.render(context(delivery())).subject == "お知らせ"


def test_template_saved_as_shift_jis_is_named(root: Path) -> None:
    write_templates(root, "x", {"subject.txt.j2": "s"})
    (root / "x" / "body.txt.j2").write_bytes("お知らせ".encode("cp932"))
    with pytest.raises(TemplateError, match=r"x/body.txt.j2: not UTF-8 text"):
        load_template_set(root, "x", root)

    (root / "x" / "body.txt.j2").write_text('{% extends "_layouts/sjis.txt.j2" %}')
    (root / "_layouts" / "sjis.txt.j2").write_bytes("署名".encode("cp932"))
    ts = load_template_set(root, "x", root)
    with pytest.raises(TemplateError, match=r"_layouts/sjis.txt.j2: not UTF-8 text"):
        ts.check(context(delivery()))


# --- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "''.__class__.__mro__",
        "cycler.__init__.__globals__",
        "recipient.__class__",
        "recipient.name.__class__.__base__.__subclasses__()",
        "campaign.as_of.__class__",
    ],
)
def test_sandbox_escape_is_refused(root: Path, expression: str) -> None:
    ts = simple_set(root, "x\n{{ " + expression + " }}\n")

    with pytest.raises(TemplateError, match=r"line 2: access to attribute '__\w+__' .* is unsafe"):
        ts.check(context(delivery()))


def test_subscript_reads_view_fields_and_refuses_internals(root: Path) -> None:
    # `x["name"]` and `map(attribute=...)` go through the sandbox's getitem, which reads the
    # views' fields directly; anything else still takes the vetted path.
    ts = simple_set(
        root,
        '{{ recipient["name"] }}|{{ recipient.accounts | map(attribute="kind") | join(",") }}'
        '|{{ recipient.accounts[0]["roles"] | join(",") }}|{{ campaign["as_of"] }}',
    )
    d = delivery(customer_account(roles=(Source.MYPAGE_BILLING,)), partner_account())
    assert ts.render(context(d)).text == "斎藤 誠|customer,partner|mypage_billing|2026-12-01"

    escape = simple_set(root, 'x\n{{ recipient["__class__"] }}\n')
    with pytest.raises(TemplateError, match="line 2"):
        escape.render(context(delivery()))


def test_globals_reach_imported_and_included_templates(root: Path) -> None:
    write_templates(
        root,
        "_layouts",
        {
            "lib.j2": "{% set ns = namespace(n=0) %}{% for i in range(3) %}"
            "{% set ns.n = ns.n + i %}{% endfor %}{% set total = ns.n %}",
            "part.txt.j2": "{{ range(2) | list }}",
        },
    )
    ts = simple_set(
        root,
        '{% from "_layouts/lib.j2" import total %}{{ total }} {% include "_layouts/part.txt.j2" %}',
    )
    assert ts.render(context(delivery())).text == "3 [0, 1]"


def test_context_cannot_be_modified(root: Path) -> None:
    ts = simple_set(root, "{{ recipient.reasons.append('X') }}")

    with pytest.raises(TemplateError):
        ts.render(context(delivery()))


def test_include_outside_the_template_roots_is_refused(root: Path) -> None:
    (root.parent / "secret.txt").write_text("top secret", encoding="utf-8")
    ts = simple_set(root, '{% include "../secret.txt" %}')

    with pytest.raises(TemplateError, match="not found"):
        ts.render(context(delivery()))


# --- escaping ---------------------------------------------------------------------------------


def test_html_is_escaped_and_text_is_not(root: Path) -> None:
    evil = "<script>alert(1)</script>"
    ts = simple_set(
        root,
        "{{ recipient.accounts[0].name }}",
        subject="{{ recipient.accounts[0].name }}",
        html="<p>{{ recipient.accounts[0].name }}</p>",
    )

    rendered = ts.render(context(delivery(customer_account(name=evil))))

    assert rendered.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert rendered.text == evil
    assert rendered.subject == evil


# --- where the template folder is -------------------------------------------------------------


def test_template_path_with_slash_is_relative_to_the_campaign_file(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    write_templates(templates, "_layouts", {"base.txt.j2": BASE_TXT})
    write_templates(templates, "x", {"subject.txt.j2": "wrong folder", "body.txt.j2": "wrong"})
    campaign_dir = tmp_path / "config" / "campaigns"
    write_templates(
        tmp_path / "elsewhere",
        "x",
        {
            "subject.txt.j2": "from elsewhere",
            "body.txt.j2": '{% extends "_layouts/base.txt.j2" %}{% block body %}B{% endblock %}',
        },
    )
    campaign_dir.mkdir(parents=True)

    ts = load_template_set(templates, "../../elsewhere/x", campaign_dir)
    rendered = ts.render(context(delivery()))

    assert rendered.subject == "from elsewhere"
    # the shared layouts are still found under the templates root
    assert rendered.text == "Dear 斎藤 誠\nB\n-- footer\n"
    assert ts.folder == tmp_path / "elsewhere" / "x"


def test_plain_name_is_a_folder_under_the_templates_root(root: Path) -> None:
    write_templates(root, "y", {"subject.txt.j2": "yy", "body.txt.j2": "b"})

    ts = load_template_set(root, "y", root.parent / "somewhere-else")

    assert ts.render(context(delivery())).subject == "yy"


def test_sample_contexts_cover_every_include_code_and_audience() -> None:
    contexts = sample_contexts(CAMPAIGN, RUN_KEY, AS_OF)

    reasons = {code for ctx in contexts for code in ctx["recipient"].reasons}
    audiences = {ctx["recipient"].audience for ctx in contexts}
    kinds = {a.kind for ctx in contexts for a in ctx["recipient"].accounts}
    assert reasons == {
        r.value
        for r in (
            Reason.MYPAGE_CONTACT,
            Reason.SYSTEM_ADMIN,
            Reason.LEGACY_ADMIN,
            Reason.PARTNER_CONTACT,
            Reason.CERTIFIED_IMPLEMENTER,
        )
    }
    assert audiences == {a.value for a in Audience}
    assert kinds == {"customer", "partner"}
