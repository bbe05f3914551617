"""Checks before freezing (issue 6): a setting or environment problem is exit 2 and no run.

Everything `run` can find wrong without sending — the SMTP password variable, the CA file, the
From address, a template that does not compile — must stop it before the run is frozen, so
that exit 2 keeps its promise "nothing changed": the ledger holds no run afterwards and a fixed
setting starts the run from scratch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SAMPLE_DATA
from tests.safety.conftest import AS_OF, CAMPAIGN, Cli, run_count

RUN = ("run", "--campaign", CAMPAIGN, "--as-of", AS_OF)
NOBODY = {"SWMAIL_SMTP_HOST": "127.0.0.1", "SWMAIL_SMTP_PORT": "9"}  # never contacted
AUTH = {
    **NOBODY,
    "SWMAIL_SMTP_SECURITY": "starttls",
    "SWMAIL_SMTP_USERNAME": "mailer",
    "SWMAIL_SMTP_PASSWORD_ENV": "SWMAIL_TEST_RELAY_PASSWORD",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def loaded(request: pytest.FixtureRequest, swmail: Cli) -> tuple[Cli, str]:
    """The sample data set imported into a fresh SQLite or PostgreSQL database."""
    url = str(
        request.getfixturevalue({"sqlite": "sqlite_url", "postgresql": "pg_url"}[request.param])
    )
    swmail.env["SWMAIL_DATABASE_URL"] = url
    assert swmail("db", "init").code == 0
    imported = swmail("db", "import", str(SAMPLE_DATA))
    assert imported.code == 0, imported.err
    return swmail, url


def _broken_template(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / CAMPAIGN).mkdir(parents=True)
    (root / CAMPAIGN / "subject.txt.j2").write_text("お知らせ", encoding="utf-8")
    (root / CAMPAIGN / "body.txt.j2").write_text("{% if %}broken", encoding="utf-8")
    return root


CASES = {
    "password variable unset": (
        AUTH,
        "SWMAIL_TEST_RELAY_PASSWORD",
    ),
    "password variable empty": (
        {**AUTH, "SWMAIL_TEST_RELAY_PASSWORD": ""},
        "SWMAIL_TEST_RELAY_PASSWORD",
    ),
    "CA file missing": (
        {
            **NOBODY,
            "SWMAIL_SMTP_SECURITY": "starttls",
            "SWMAIL_SMTP_CA_FILE": "/nonexistent/ca.pem",
        },
        "smtp.ca_file",
    ),
    "CA file is a folder": (
        {**NOBODY, "SWMAIL_SMTP_SECURITY": "tls", "SWMAIL_SMTP_CA_FILE": "/"},
        "smtp.ca_file",
    ),
    "From without an address": (
        {**NOBODY, "SWMAIL_MESSAGE_FROM": "SmileWorks事務局 <not an address>"},
        "message.from",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_setting_is_exit_2_before_the_run_is_frozen(
    loaded: tuple[Cli, str], case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    swmail, url = loaded
    settings, named = CASES[case]
    monkeypatch.delenv("SWMAIL_TEST_RELAY_PASSWORD", raising=False)
    result = swmail(*RUN, **settings)
    assert result.code == 2, (result.out, result.err)
    assert named in result.err
    assert run_count(url) == 0  # §8: exit 2 means nothing changed in the ledger


def test_a_template_that_does_not_compile_is_exit_2_before_the_run_is_frozen(
    loaded: tuple[Cli, str], tmp_path: Path
) -> None:
    swmail, url = loaded
    result = swmail(*RUN, **NOBODY, SWMAIL_PATHS_TEMPLATES=str(_broken_template(tmp_path)))
    assert result.code == 2
    assert "body.txt.j2, line 1" in result.err
    assert run_count(url) == 0


def test_a_good_password_variable_passes_the_check(
    loaded: tuple[Cli, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check refuses only what is wrong: with the variable set, `run` gets to the relay."""
    swmail, url = loaded
    monkeypatch.setenv("SWMAIL_TEST_RELAY_PASSWORD", "s3cret")
    result = swmail(*RUN, **AUTH)
    # Nothing listens on port 9: the run is frozen, then the relay is down (exit 3).
    assert result.code == 3, (result.out, result.err)
    assert run_count(url) == 1
