"""The operator's commands for issue 2 through click's CliRunner and a real subprocess.

Exit codes and messages are the public interface of SPEC §8, so each test asserts both.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from run_campaign import cli
from tests.conftest import REPO

AS_OF = "2026-12-01"
CAMPAIGN = "maintenance-notice"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A project-like working folder: config/ and templates/ of the repo, a SQLite file in tmp."""
    monkeypatch.chdir(REPO)
    values = {
        "SWMAIL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "SWMAIL_DATABASE_LEDGER_URL": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def loaded(env: dict[str, str], sample_data: Path) -> dict[str, str]:
    assert invoke("db", "init")[0] == 0
    code, out, err = invoke("db", "import", str(sample_data))
    assert code == 0, err
    assert "customers 88" in out
    return env


def test_resolve_json_counts_match_the_expected_file(
    loaded: dict[str, str], sample_data: Path
) -> None:
    code, out, _ = invoke("resolve", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--json")
    assert code == 0
    data = json.loads(out)
    with (sample_data / "expected_address.csv").open(encoding="utf-8") as f:
        expected = list(csv.DictReader(f))
    for decision in ("send", "merged", "skip"):
        assert data["decisions"].get(decision, 0) == sum(
            r["decision"] == decision for r in expected
        )
    assert data["deliveries"] == data["decisions"]["send"]
    assert data["reasons"]["DUPLICATE_ADDRESS"] == 3


def test_dry_run_writes_audit_warnings_and_one_message_per_delivery(
    loaded: dict[str, str], tmp_path: Path, sample_data: Path
) -> None:
    out = tmp_path / "dry"
    code, stdout, _ = invoke("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out))
    assert code == 0
    raw = (out / "audit.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # §5: UTF-8 with BOM for Excel
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    with (sample_data / "expected_address.csv").open(encoding="utf-8") as f:
        expected = {r["key"]: r for r in csv.DictReader(f)}
    got = {f"{r['source']}|{r['account_id']}|{r['person_id']}": r for r in rows}
    assert got.keys() == expected.keys()
    for key, row in got.items():
        assert (row["decision"], row["reasons"]) == (
            expected[key]["decision"],
            expected[key]["reasons"],
        ), key
        assert row["status"] == ("dry_run" if row["decision"] != "skip" else "")
    sends = [r for r in rows if r["decision"] == "send"]
    messages = sorted((out / "messages").glob("*.eml"))
    assert len(messages) == len(sends)
    ids = set()
    for path in messages:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        ids.add(msg["Message-ID"])
    assert ids == {r["message_id"] for r in sends}
    merged = [r for r in rows if r["decision"] == "merged"]
    assert merged and all(r["message_id"] in ids for r in merged)
    warnings = (out / "warnings.csv").read_text(encoding="utf-8-sig").splitlines()
    assert warnings[0] == "code,account_id,person_id,email,detail"
    assert any(line.startswith("UNREACHABLE_CUSTOMER,C070000005") for line in warnings)
    assert f"messages: {out / 'messages'} ({len(sends)} files)" in stdout


def test_dry_run_message_ids_are_stable_and_follow_the_run_key(
    loaded: dict[str, str], tmp_path: Path
) -> None:
    def ids(out: Path, *extra: str) -> list[str]:
        assert (
            invoke("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out), *extra)[
                0
            ]
            == 0
        )
        rows = csv.DictReader((out / "audit.csv").read_text(encoding="utf-8-sig").splitlines())
        return [r["message_id"] for r in rows]

    first = ids(tmp_path / "a")
    assert first == ids(tmp_path / "b")
    other = ids(tmp_path / "c", "--run-key", "second-try")
    assert [m for m in other if m] and set(filter(None, other)).isdisjoint(filter(None, first))


def test_dry_run_writes_nothing_to_the_database(loaded: dict[str, str], tmp_path: Path) -> None:
    db_file = Path(loaded["SWMAIL_DATABASE_URL"].removeprefix("sqlite:///"))
    before = db_file.read_bytes()
    assert (
        invoke("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(tmp_path / "d"))[0]
        == 0
    )
    code, out, _ = invoke("status")
    assert code == 0 and "no runs yet" in out
    assert db_file.read_bytes() == before


def _write_customers(folder: Path, company: str, contact_name: str = "山田 太郎") -> None:
    folder.mkdir()
    with (folder / "customers.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "corp_id",
                "company_name",
                "channel",
                "reseller_partner_id",
                "plan",
                "contract_status",
                "applied_on",
                "is_oem",
                "mypage_postal_code",
                "mypage_address",
                "company_info_name",
                "company_info_address",
            ]
        )
        w.writerow(
            ["C1", company, "direct", "", "paid", "active", "2018-01-01", "0", "100-0001",
             "東京都", "書類用", "書類用住所"]
        )  # fmt: skip
    with (folder / "mypage_contacts.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["corp_id", "role", "name", "email"])
        w.writerow(["C1", "contract_manager", contact_name, "taro@example.jp"])


def test_audit_cells_that_excel_would_evaluate_are_neutralised(
    env: dict[str, str], tmp_path: Path
) -> None:
    _write_customers(tmp_path / "data", '=HYPERLINK("http://x")')
    assert invoke("db", "import", str(tmp_path / "data"))[0] == 0
    assert (
        invoke("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(tmp_path / "o"))[0]
        == 0
    )
    rows = list(
        csv.DictReader((tmp_path / "o" / "audit.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    assert rows[0]["account_name"] == '\'=HYPERLINK("http://x")'


def test_cp932_audit_reports_unencodable_cells_instead_of_crashing(
    env: dict[str, str], tmp_path: Path
) -> None:
    _write_customers(tmp_path / "data", "株式会社𠮷野", contact_name="髙橋 一郎")
    assert invoke("db", "import", str(tmp_path / "data"))[0] == 0
    code, _, err = invoke(
        "dry-run",
        "--campaign",
        CAMPAIGN,
        "--as-of",
        AS_OF,
        "--out",
        str(tmp_path / "o"),
        "--encoding",
        "cp932",
    )
    assert code == 0
    assert "cannot be written in cp932" in err and "account_name" in err
    text = (tmp_path / "o" / "audit.csv").read_bytes().decode("cp932")
    assert "株式会社?野" in text
    assert "髙橋 一郎" in text  # an IBM extension cp932 does carry


def test_a_broken_template_stops_the_dry_run_before_anything_is_written(
    env: dict[str, str], tmp_path: Path, sample_data: Path
) -> None:
    assert invoke("db", "import", str(sample_data))[0] == 0
    templates = tmp_path / "tpl"
    (templates / "broken").mkdir(parents=True)
    (templates / "broken" / "subject.txt.j2").write_text("お知らせ\n", encoding="utf-8")
    (templates / "broken" / "body.txt.j2").write_text(
        "{{ recipient.name }} 様\n{{ recipient.nmae }}\n", encoding="utf-8"
    )
    campaign = tmp_path / "broken.toml"
    campaign.write_text('id = "broken"\ntemplate = "tpl/broken"\n', encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = invoke(
        "dry-run", "--campaign", str(campaign), "--as-of", AS_OF, "--out", str(out)
    )
    assert code == 2
    assert "body.txt.j2" in err and "line 2" in err
    assert not out.exists()
    assert not list(tmp_path.rglob(".swmail-dry-run-*"))


def test_explain_exit_codes(loaded: dict[str, str]) -> None:
    code, out, _ = invoke(
        "explain",
        "--campaign",
        CAMPAIGN,
        "--as-of",
        AS_OF,
        "--email",
        "ZEIRISHI0@kaikei.example.jp",
    )
    assert code == 0
    assert out.count("merged into:") == 2 and "C070000017" in out
    code, _, err = invoke("explain", "--campaign", CAMPAIGN, "--email", "nobody@example.jp")
    assert code == 2 and "nobody@example.jp" in err
    code, _, err = invoke("explain", "--campaign", CAMPAIGN, "--corp-id", "C999")
    assert code == 2 and "C999" in err
    code, _, err = invoke("explain", "--campaign", CAMPAIGN)
    assert code == 2 and "exactly one" in err


def test_explain_json_shows_non_candidates_and_every_rule(loaded: dict[str, str]) -> None:
    code, out, _ = invoke(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--corp-id", "C070000001", "--json"
    )
    assert code == 0
    people = json.loads(out)["people"]
    decisions = {p["person_id"] or p["source"]: p["decision"] for p in people}
    assert decisions["staff01"] == "not_a_candidate"  # an ordinary user: not in the audit
    assert decisions["tanaka01"] == "send"
    code, out, _ = invoke(
        "explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--corp-id", "C070000002", "--json"
    )
    skipped = [p for p in json.loads(out)["people"] if p["decision"] == "skip"]
    assert skipped and all("RESELLER_CHANNEL" in p["reasons"] for p in skipped)
    assert all(p["because"] for p in skipped)


def test_preview_prints_the_message_or_exit_2(loaded: dict[str, str]) -> None:
    code, out, _ = invoke(
        "preview",
        "--campaign",
        CAMPAIGN,
        "--as-of",
        AS_OF,
        "--email",
        "zeirishi0@kaikei.example.jp",
    )
    assert code == 0
    assert "To: 木村 一郎 <zeirishi0@kaikei.example.jp>" in out
    assert "有限会社みらい丸の内" in out  # the merged account appears in the footer
    code, _, err = invoke(
        "preview",
        "--campaign",
        CAMPAIGN,
        "--as-of",
        AS_OF,
        "--email",
        "shota.suzuki.c070000002@mail.example.ne.jp",
    )
    assert code == 2 and "explain" in err


def test_config_errors_are_one_line_exit_2(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWMAIL_SMTP_PORT", "twenty-five")
    code, _, err = invoke("resolve", "--campaign", CAMPAIGN)
    assert code == 2 and "SWMAIL_SMTP_PORT" in err and "Traceback" not in err
    monkeypatch.delenv("SWMAIL_SMTP_PORT")
    code, _, err = invoke("resolve", "--campaign", "no-such-campaign")
    assert code == 2 and "maintenance-notice" in err  # lists the known campaigns
    bad = tmp_path / "bad.toml"
    bad.write_text("[database\n", encoding="utf-8")
    code, _, err = invoke("--config", str(bad), "resolve", "--campaign", CAMPAIGN)
    assert code == 2 and "bad.toml" in err


def test_subprocess_bad_import_exit_2_without_traceback(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _write_customers(data, "株式会社テスト")
    text = (data / "customers.csv").read_text(encoding="utf-8").replace(",direct,", ",dirrect,")
    (data / "customers.csv").write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(REPO / "run_campaign.py"), "db", "import", str(data)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "customers.csv, line 2" in proc.stderr and "channel" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "run_campaign.py"),
            "resolve",
            "--campaign",
            CAMPAIGN,
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["candidates"] == 0  # the bad import changed nothing


def test_resolving_before_db_init_says_what_to_do(env: dict[str, str]) -> None:
    code, _, err = invoke("resolve", "--campaign", CAMPAIGN)
    assert code == 2
    # the SQLite file does not exist: said in one line, and resolve does not create it (issue 6)
    assert "does not exist" in err and "swmail db init" in err and "Traceback" not in err
