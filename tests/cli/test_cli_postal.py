"""`export-postal` (SPEC §10) on the sample data set: who gets a letter, and at which address.

The expectations are computed here from the sample CSV files by the rule of the help center
(My Page 会社基本設定 only, never company info), independently of `resolver.postal`.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.cli.conftest import AS_OF, CAMPAIGN, invoke

COLUMNS = ["account_kind", "account_id", "account_name", "postal_code", "address", "attention"]


def _rows(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def _sample(sample_data: Path, name: str) -> list[dict[str, str]]:
    with (sample_data / name).open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def _expected_customers(sample_data: Path) -> list[tuple[str, ...]]:
    managers = {
        c["corp_id"]: c["name"]
        for c in _sample(sample_data, "mypage_contacts.csv")
        if c["role"] == "contract_manager"
    }
    return sorted(
        (
            "customer",
            c["corp_id"],
            c["company_name"],
            c["mypage_postal_code"],
            c["mypage_address"],
            managers.get(c["corp_id"], ""),
        )
        for c in _sample(sample_data, "customers.csv")
        if c["channel"] == "direct" and c["contract_status"] != "terminated"
    )


def _export(out: Path, *extra: str, campaign: str = CAMPAIGN) -> tuple[int, str, str]:
    return invoke(
        "export-postal", "--campaign", campaign, "--as-of", AS_OF, "--out", str(out), *extra
    )


def test_the_sample_set_gives_every_direct_customer_and_active_partner_its_my_page_address(
    loaded: dict[str, str], sample_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "postal.csv"
    code, stdout, stderr = _export(out)
    assert code == 0, stderr
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # §5: UTF-8 with BOM for Excel
    rows = [tuple(r.values()) for r in _rows(out)]
    customers = _expected_customers(sample_data)
    assert len(customers) == 55
    osaka, tokyo = "大阪府大阪市北区1-1-1", "東京都千代田区1-1-1"
    partners = [
        ("partner", "P0700004", "合同会社大和システム", "662-5552", osaka, "山口 大輔"),
        # only certified implementers: listed, nobody to address it to
        ("partner", "P0700005", "株式会社青空システム", "280-3478", osaka, ""),
        ("partner", "P0700007", "合同会社さくらシステム", "712-9859", tokyo, "中村 恵"),
    ]
    assert rows == customers + partners  # customers first, then partners, each by id
    text = raw.decode("utf-8-sig")
    assert "書類用住所" not in text and " 本社" not in text  # §2: never company info
    assert "postal list of maintenance-notice as of 2026-12-01: 58 accounts" in stdout
    assert "warnings: MISSING_POSTAL_ADDRESS 0" in stdout


def test_blank_addresses_are_listed_and_warned(
    env: dict[str, str], sample_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(sample_data, data)
    customers = (data / "customers.csv").read_text(encoding="utf-8")
    customers = customers.replace(",664-7955,東京都千代田区2-8-19,", ",664-7955,  ,")  # C070000001
    (data / "customers.csv").write_text(customers, encoding="utf-8")
    partners = (data / "partners.csv").read_text(encoding="utf-8")
    (data / "partners.csv").write_text(partners.replace(",662-5552,", ",,"), encoding="utf-8")
    assert invoke("db", "init")[0] == 0
    assert invoke("db", "import", str(data))[0] == 0

    out = tmp_path / "postal.csv"
    code, stdout, stderr = _export(out)
    assert code == 0, stderr
    rows = {r["account_id"]: r for r in _rows(out)}
    assert (rows["C070000001"]["postal_code"], rows["C070000001"]["address"]) == ("664-7955", "")
    assert (rows["P0700004"]["postal_code"], rows["P0700004"]["address"]) == (
        "",
        "大阪府大阪市北区1-1-1",
    )
    warned = [line for line in stderr.splitlines() if "MISSING_POSTAL_ADDRESS" in line]
    assert len(warned) == 2
    assert "customer C070000001" in warned[0] and "partner P0700004" in warned[1]
    assert "warnings: MISSING_POSTAL_ADDRESS 2" in stdout


def test_cp932_export_holds_the_same_rows(loaded: dict[str, str], tmp_path: Path) -> None:
    utf8, sjis = tmp_path / "utf8.csv", tmp_path / "cp932.csv"
    assert _export(utf8)[0] == 0
    code, _, stderr = _export(sjis, "--encoding", "cp932")
    assert code == 0, stderr
    raw = sjis.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "株式会社".encode("cp932") in raw
    assert _rows(sjis, "cp932") == _rows(utf8)


@pytest.mark.parametrize(
    ("settings", "kinds", "partners"),
    [
        ('audiences = ["partner"]', set(), ["P0700004", "P0700007"]),
        ('audiences = ["implementation_partner"]', set(), ["P0700005"]),
        ('audiences = ["customer"]\n[filters]\nplans = ["free"]', {"customer"}, []),
    ],
)
def test_the_campaign_decides_which_accounts(
    loaded: dict[str, str],
    sample_data: Path,
    tmp_path: Path,
    settings: str,
    kinds: set[str],
    partners: list[str],
) -> None:
    campaign = tmp_path / "letters.toml"
    campaign.write_text(f'id = "letters"\ntemplate = "maintenance-notice"\n{settings}\n')
    out = tmp_path / "postal.csv"
    code, _, stderr = _export(out, campaign=str(campaign))
    assert code == 0, stderr
    rows = _rows(out)
    assert [r["account_id"] for r in rows if r["account_kind"] == "partner"] == partners
    listed = {r["account_id"] for r in rows if r["account_kind"] == "customer"}
    if kinds:
        free = {
            c["corp_id"]
            for c in _sample(sample_data, "customers.csv")
            if c["plan"] == "free" and c["channel"] == "direct"
            and c["contract_status"] != "terminated"
        }  # fmt: skip
        assert listed == free and free
    else:
        assert listed == set()
