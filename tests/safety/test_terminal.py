"""Terminal output (issue 6): text from data is shown escaped, never obeyed by the terminal.

A name or company name can carry ESC sequences (rewrite the screen, the window title), BEL, CR
(hide the start of a line), C1 controls (U+009B is an 8-bit CSI) and bidi overrides (U+202E
reverses what follows). `explain`, `preview`, error lines and JSON output show them as `\\x1b`,
`\\u202e`; header display names lose bidi overrides like other controls (HEADER_SANITIZED).
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
from pathlib import Path

import pytest

from jobs.terminal import terminal_safe
from resolver.normalize import strip_controls
from resolver.warnings import header_sanitized
from tests.resolver.builders import partner_account, partner_contact
from tests.resolver.builders import resolve as resolve_accounts
from tests.safety.conftest import AS_OF, CAMPAIGN, Cli

ESC_TITLE = "\x1b]0;owned\x07"  # sets the terminal window title, then BEL
CLEAR = "\x1b[2J"
RLO = "\u202e"
C1_CSI = "\x9b"
RAW = (ESC_TITLE, CLEAR, RLO, C1_CSI, "\x07", "\r")

COMPANY = f"株式会社テスト{CLEAR}{RLO}gpj.exe{C1_CSI}31m"
PERSON = f"山田{RLO}太郎{ESC_TITLE}"
ADDRESS = "taro.yamada@example.jp"


def assert_clean(text: str) -> None:
    for ch in RAW:
        assert ch not in text, f"raw {ch!r} reached the terminal"


# --- the function -----------------------------------------------------------------------------


def test_terminal_safe_escapes_controls_and_bidi_but_keeps_lines_and_tabs() -> None:
    assert terminal_safe("a\x1b[31mb\x07c\rd") == "a\\x1b[31mb\\x07c\\x0dd"
    assert terminal_safe(f"x{RLO}y\u2066z\u2069") == "x\\u202ey\\u2066z\\u2069"
    assert terminal_safe(f"{C1_CSI}\x7f") == "\\x9b\\x7f"
    assert terminal_safe("行1\n\t行2") == "行1\n\t行2"
    assert terminal_safe("a\nb", keep="") == "a\\x0ab"
    assert terminal_safe("山田 太郎 <a@example.jp> 😀\u200d") == "山田 太郎 <a@example.jp> 😀\u200d"


def test_terminal_safe_json_stays_json_with_the_same_values() -> None:
    value = {"name": PERSON, "company": COMPANY}
    shown = terminal_safe(json.dumps(value, ensure_ascii=False), json=True)
    assert_clean(shown)
    assert json.loads(shown) == value


# --- header names (resolver) ------------------------------------------------------------------


@pytest.mark.parametrize("bidi", [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))])
def test_bidi_overrides_are_removed_from_names(bidi: str) -> None:
    assert strip_controls(f"山田{bidi}太郎") == ("山田太郎", True)


def test_a_name_with_a_bidi_override_is_header_sanitized() -> None:
    contact = partner_contact("K1", "k1@example.jp", name=f"中村{RLO}恵")
    resolution = resolve_accounts(partners=[partner_account(contacts=[contact])])
    (warning,) = resolution.warnings
    assert warning == header_sanitized(resolution.rows[0].candidate)
    assert resolution.deliveries[0].name == "中村恵"
    assert resolution.rows[0].candidate.name == "中村恵"  # the audit's name column too


# --- the commands -----------------------------------------------------------------------------


@pytest.fixture
def hostile(swmail: Cli, tmp_path: Path) -> Cli:
    """One direct customer whose company name and contact name are full of controls."""
    data = tmp_path / "data"
    data.mkdir()
    with (data / "customers.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            (
                "corp_id", "company_name", "channel", "reseller_partner_id", "plan",
                "contract_status", "applied_on", "is_oem", "mypage_postal_code",
                "mypage_address", "company_info_name", "company_info_address",
            )
        )  # fmt: skip
        w.writerow(
            ("C000000001", COMPANY, "direct", "", "paid", "active", "2021-04-01", "0",
             "100-0001", f"東京都{ESC_TITLE}", "x", "y")
        )  # fmt: skip
    with (data / "mypage_contacts.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(("corp_id", "role", "name", "email"))
        w.writerow(("C000000001", "contract_manager", PERSON, ADDRESS))
    swmail.env["SWMAIL_DATABASE_URL"] = "sqlite:///swmail.sqlite3"
    assert swmail("db", "init").code == 0
    imported = swmail("db", "import", str(data))
    assert imported.code == 0, imported.err
    return swmail


def test_explain_shows_controls_escaped(hostile: Cli) -> None:
    result = hostile("explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--corp-id", "C000000001")
    assert result.code == 0, result.err
    assert_clean(result.out)
    assert "株式会社テスト\\x1b[2J\\u202egpj.exe\\x9b31m" in result.out
    assert "山田太郎" in result.out  # the candidate's name was sanitized (HEADER_SANITIZED)
    assert "HEADER_SANITIZED" in result.out


def test_explain_json_shows_controls_escaped_and_parses(hostile: Cli) -> None:
    result = hostile(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--corp-id", "C000000001", "--json"
    )
    assert result.code == 0, result.err
    assert_clean(result.out)
    [person] = json.loads(result.out)["people"]
    assert person["account_name"] == COMPANY  # the same value, only spelled with escapes


def test_preview_shows_controls_escaped(hostile: Cli) -> None:
    result = hostile("preview", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", ADDRESS)
    assert result.code == 0, result.err
    assert_clean(result.out)
    assert "\\x1b[2J" in result.out  # the company name in the body, escaped
    assert 'To: "山田太郎]0;owned" <taro.yamada@example.jp>' in result.out  # ESC, BEL, RLO gone
    assert "\\x0d" not in result.out  # CRLF line ends are plain line ends


def test_preview_raw_headers_carry_no_bidi_override(hostile: Cli) -> None:
    """`--raw` is the exact bytes: the display name in `To` was sanitized before encoding."""
    result = hostile(
        "preview", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", ADDRESS, "--raw"
    )
    assert result.code == 0, result.err
    raw = result.out.encode("utf-8", "surrogateescape")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"].addresses[0].display_name == "山田太郎]0;owned"


def test_an_error_line_shows_controls_escaped(hostile: Cli) -> None:
    result = hostile(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--corp-id", f"C9{CLEAR}{RLO}\n"
    )
    assert result.code == 2
    assert_clean(result.err)
    assert "\n" not in result.err.strip()  # one line, even when the data held a line break
    assert "\\x1b[2J\\u202e" in result.err


def test_a_campaign_file_error_shows_controls_escaped(swmail: Cli, tmp_path: Path) -> None:
    campaign = tmp_path / "bad.toml"
    campaign.write_text(
        'id = "bad"\ntemplate = "maintenance-notice"\n"x\\u001b[2J\\u202e" = 1\n',
        encoding="utf-8",
    )
    result = swmail("resolve", "--campaign", str(campaign), SWMAIL_DATABASE_URL="sqlite:///x.db")
    assert result.code == 2
    assert_clean(result.err)
    assert "\\x1b[2J\\u202e" in result.err
