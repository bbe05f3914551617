"""Runaway templates (issue 6): a template that builds a huge value is exit 2 naming it.

Templates are operator files; one typo (`10**12` for `10*12`) or a hostile edit must not take
the machine down or crash with MemoryError (exit 1). Each form is refused as a TemplateError
naming the file: at check time (`TemplateSet.check`, before a run is frozen or a file written)
when it runs away for every recipient, at render time when only some recipient's data makes it.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from jobs.errors import TemplateError
from jobs.messages.render import MAX_TEMPLATE_CHARS, TemplateSet, load_template_set, sample_contexts
from tests.messages.builders import context, delivery
from tests.safety.conftest import AS_OF, CAMPAIGN, Cli

RUNAWAY = {
    "string repeat": "{{ 'a' * 10**12 }}",
    "repeat the other way": "{{ 10**12 * 'ab' }}",
    "list repeat": "{{ ([1] * 10**10) | length }}",
    "huge range": "{% for i in range(10**9) %}{{ i }}{% endfor %}",
    "range to a list": "{{ range(10**12) | list | length }}",
    "huge power": "{{ 10 ** 100000000 }}",
    "doubling with ~": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling with +": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "output of nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
    "xxxxxxxxxx{% endfor %}{% endfor %}",
    "a block set": "{% set big %}{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}"
    "{% endset %}{{ big | length }}",
    "a macro calling itself": "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "printf width": "{{ '%*s' % (10**12, 'x') }}",
    "center": "{{ 'x' | center(10**12) }}",
    "lipsum": "{{ lipsum(10**7) }}",
}


def template_set(root: Path, body: str) -> TemplateSet:
    folder = root / "x"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subject.txt.j2").write_text("件名", encoding="utf-8")
    (folder / "body.txt.j2").write_text(body, encoding="utf-8")
    return load_template_set(root, "x", root)


@pytest.mark.parametrize("case", sorted(RUNAWAY))
def test_a_runaway_template_is_refused_when_checked(tmp_path: Path, case: str) -> None:
    ts = template_set(tmp_path / "templates", RUNAWAY[case])
    with pytest.raises(TemplateError) as caught:
        ts.check(*sample_contexts(CAMPAIGN, AS_OF, date(2026, 12, 1)))
    assert caught.value.file is not None
    assert caught.value.file.endswith("x/body.txt.j2")


def test_ordinary_arithmetic_and_repetition_still_work(tmp_path: Path) -> None:
    body = (
        "{{ '-' * 40 }}|{{ 2 ** 10 }}|{{ 'a' ~ 'b' }}|{{ [1, 2] * 2 }}|{{ '%5s' % 'x' }}|"
        "{{ 7 % 3 }}"
    )
    text = template_set(tmp_path / "templates", body).render(context(delivery())).text
    assert text == f"{'-' * 40}|1024|ab|[1, 2, 1, 2]|    x|1"


def test_a_value_just_under_the_limit_is_allowed(tmp_path: Path) -> None:
    ts = template_set(tmp_path / "templates", f"{{{{ 'a' * {MAX_TEMPLATE_CHARS} }}}}")
    assert len(ts.render(context(delivery())).text) == MAX_TEMPLATE_CHARS


def test_data_that_makes_a_template_run_away_is_refused_at_render_time(tmp_path: Path) -> None:
    # Fine for the short sample names, too big for this recipient's long name.
    ts = template_set(tmp_path / "templates", "{{ 'a' * (recipient.name | length * 100000) }}")
    ts.check(*sample_contexts(CAMPAIGN, AS_OF, date(2026, 12, 1)))
    with pytest.raises(TemplateError, match="runaway template") as caught:
        ts.render(context(delivery(name="長い名前の人" * 3)))
    assert caught.value.file is not None and caught.value.file.endswith("x/body.txt.j2")


@pytest.mark.parametrize("command", ["dry-run", "preview", "run"])
def test_the_commands_refuse_a_runaway_template_with_exit_2(
    swmail: Cli, sample_data: Path, tmp_path: Path, command: str
) -> None:
    root = tmp_path / "templates"
    (root / CAMPAIGN).mkdir(parents=True)
    (root / CAMPAIGN / "subject.txt.j2").write_text("件名", encoding="utf-8")
    (root / CAMPAIGN / "body.txt.j2").write_text("{{ 'a' * 10**12 }}", encoding="utf-8")
    swmail.env["SWMAIL_DATABASE_URL"] = "sqlite:///swmail.sqlite3"
    swmail.env["SWMAIL_PATHS_TEMPLATES"] = str(root)
    assert swmail("db", "init").code == 0
    assert swmail("db", "import", str(sample_data)).code == 0
    args = {
        "dry-run": ("--out", "out"),
        "preview": ("--email", "a@example.jp"),
        "run": (),
    }[command]
    result = swmail(command, "--campaign", CAMPAIGN, "--as-of", AS_OF, *args)
    assert result.code == 2, (result.out, result.err)
    assert f"{CAMPAIGN}/body.txt.j2" in result.err
    assert "runaway template" in result.err
    assert not os.path.exists(swmail.workdir / "out")
