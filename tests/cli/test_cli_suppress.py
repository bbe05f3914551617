"""`suppress add/list/remove` (SPEC §10): the operator's stops, each seen in the next dry run.

The sample set gets one source-data suppression (`suppressions.csv`) so that the union of both
lists, and the refusal to lift a stop that only the source data holds, are visible.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import AS_OF, CAMPAIGN, invoke

MAKOTO = "makoto.saito.c070000001@example.co.jp"  # contract manager of C070000001: a send row
HANAKO = "hanako.nakamura.c070000001@example.jp"  # billing contact: suppressed by the source data
NOTE = "本人から電話で停止依頼 (#4512)"
COLUMNS = ["email", "reason", "origin", "run_id", "note", "created_at"]


@pytest.fixture
def site(env: dict[str, str], sample_data: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(sample_data, data)
    with (data / "suppressions.csv").open("a", encoding="utf-8") as f:
        f.write(f"{HANAKO},complaint,2026-10-01\n")
    assert invoke("db", "init")[0] == 0
    code, _, err = invoke("db", "import", str(data))
    assert code == 0, err
    return data


def _dry_run(tmp_path: Path, name: str) -> dict[str, tuple[str, str]]:
    out = tmp_path / name
    code, _, err = invoke("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out))
    assert code == 0, err
    with (out / "audit.csv").open(encoding="utf-8-sig", newline="") as f:
        return {r["email"]: (r["decision"], r["reasons"]) for r in csv.DictReader(f)}


def _listed() -> list[dict[str, str]]:
    code, out, err = invoke("suppress", "list")
    assert code == 0, err
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == COLUMNS
    return list(reader)


def test_add_list_and_remove_are_each_seen_in_a_dry_run(site: Path, tmp_path: Path) -> None:
    assert _dry_run(tmp_path, "d0")[MAKOTO] == ("send", "MYPAGE_CONTACT")
    assert _dry_run(tmp_path, "d0")[HANAKO] == ("skip", "SUPPRESSED")

    # §4 normalization: full-width and upper case reach the same dedupe key
    typed = "ＭＡＫＯＴＯ.ＳＡＩＴＯ.Ｃ070000001@EXAMPLE.CO.JP"
    code, out, err = invoke("suppress", "add", typed, "--reason", "complaint", "--note", NOTE)
    assert code == 0, err
    assert f"suppressed {MAKOTO} (complaint)" in out
    assert _dry_run(tmp_path, "d1")[MAKOTO] == ("skip", "SUPPRESSED")

    listed = {(r["email"], r["origin"]): r for r in _listed()}
    assert set(listed) == {(HANAKO, "source_data"), (MAKOTO, "operator")}
    assert listed[HANAKO, "source_data"]["reason"] == "complaint"
    assert listed[HANAKO, "source_data"]["created_at"] == "2026-10-01"
    mine = listed[MAKOTO, "operator"]
    assert (mine["reason"], mine["note"], mine["run_id"]) == ("complaint", NOTE, "")
    assert mine["created_at"].startswith("20")

    code, out, _ = invoke("explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", MAKOTO)
    assert code == 0
    assert f"suppressed by an operator (complaint) on {mine['created_at'][:10]}" in out
    assert NOTE in out
    code, out, _ = invoke("explain", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--email", HANAKO)
    assert "suppressed by the source data (suppressions.csv, complaint) on 2026-10-01" in out

    code, out, err = invoke("suppress", "remove", MAKOTO)
    assert code == 0, err
    assert f"removed {MAKOTO}" in out
    assert _dry_run(tmp_path, "d2")[MAKOTO] == ("send", "MYPAGE_CONTACT")
    assert [r["email"] for r in _listed()] == [HANAKO]


def test_a_stop_only_the_source_data_holds_is_lifted_there(site: Path) -> None:
    code, _, err = invoke("suppress", "remove", HANAKO)
    assert code == 2
    assert "suppressions.csv" in err
    code, _, err = invoke("suppress", "remove", "nobody@example.jp")
    assert code == 2
    assert "not on the suppression list" in err


def test_an_address_on_both_lists_stays_suppressed_after_remove(site: Path) -> None:
    assert invoke("suppress", "add", HANAKO, "--note", "二重")[0] == 0
    code, out, _ = invoke("suppress", "remove", HANAKO)
    assert code == 0
    assert f"note: {HANAKO} stays suppressed by the source data" in out


def test_the_ledger_list_survives_a_reimport(site: Path, tmp_path: Path) -> None:
    assert invoke("suppress", "add", MAKOTO)[0] == 0
    code, _, err = invoke("db", "import", str(site))
    assert code == 0, err
    assert _dry_run(tmp_path, "after")[MAKOTO] == ("skip", "SUPPRESSED")
    code, out, _ = invoke("suppress", "add", MAKOTO, "--reason", "complaint")
    assert code == 0
    assert "already suppressed, left as it is: suppressed by an operator (manual)" in out


def test_bad_addresses_and_reasons_are_refused(site: Path) -> None:
    code, _, err = invoke("suppress", "add", "not an address")
    assert code == 2 and "not a valid e-mail address" in err
    code, _, _ = invoke("suppress", "add", MAKOTO, "--reason", "hard_bounce")
    assert code == 2  # only the job records hard bounces


@pytest.mark.parametrize("encoding", ["utf-8", "cp932"])
def test_list_out_writes_the_csv_conventions(site: Path, tmp_path: Path, encoding: str) -> None:
    assert invoke("suppress", "add", "=cmd@example.jp", "--note", "=HYPERLINK(1)")[0] == 0
    out = tmp_path / "suppressions.csv"
    code, stdout, err = invoke("suppress", "list", "--out", str(out), "--encoding", encoding)
    assert code == 0, err
    assert f"wrote 2 rows to {out}" in stdout
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8")
    text = raw.decode("utf-8-sig" if encoding == "utf-8" else "cp932")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == COLUMNS
    mine = next(r for r in rows if r["origin"] == "operator")
    assert (mine["email"], mine["note"]) == ("'=cmd@example.jp", "'=HYPERLINK(1)")  # §5
