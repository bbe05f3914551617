"""The shared sample data set resolves exactly as its expected_*.csv say (as of 2026-12-01)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from resolver.model import CampaignPolicy, Decided, DedupeMode
from resolver.resolve import resolve_all
from tests.resolver.sample import expected, load

AS_OF = date(2026, 12, 1)


def _actual(row: Decided, mode: DedupeMode) -> tuple[str, str, str]:
    group = ""
    if row.delivery_email is not None:
        group = row.delivery_email.lower()
        if mode is DedupeMode.ADDRESS_PER_ACCOUNT:
            group += f"|{row.candidate.account_id}"
    return row.decision.value, ";".join(row.reasons), group


@pytest.mark.parametrize(
    ("mode", "file"),
    [
        (DedupeMode.ADDRESS, "expected_address.csv"),
        (DedupeMode.ADDRESS_PER_ACCOUNT, "expected_address_per_account.csv"),
    ],
)
def test_every_candidate_is_decided_as_expected(
    sample_data: Path, mode: DedupeMode, file: str
) -> None:
    data = load(sample_data)
    resolution = resolve_all(
        data.customers, data.partners, CampaignPolicy(dedupe=mode), AS_OF, data.suppressed
    )
    actual = {
        f"{r.candidate.source}|{r.candidate.account_id}|{r.candidate.person_id}": _actual(r, mode)
        for r in resolution.rows
    }
    want = expected(sample_data, file)

    assert len(actual) == len(resolution.rows), "a candidate key appears twice"
    assert sorted(set(actual) - set(want)) == [], "candidates the expected file does not list"
    assert sorted(set(want) - set(actual)) == [], "expected candidates the resolver missed"
    wrong = {key: (actual[key], want[key]) for key in want if actual[key] != want[key]}
    assert wrong == {}
    assert resolution.excluded == ()


def test_sample_deliveries_match_the_send_rows(sample_data: Path) -> None:
    data = load(sample_data)
    resolution = resolve_all(
        data.customers, data.partners, CampaignPolicy(), AS_OF, data.suppressed
    )
    sends = [r for r in resolution.rows if r.decision.value == "send"]
    assert [d.key for d in resolution.deliveries] == [r.delivery_key for r in sends]
    assert [d.seq for d in resolution.deliveries] == list(range(1, len(sends) + 1))
    shared = next(d for d in resolution.deliveries if d.key == "zeirishi0@kaikei.example.jp")
    assert [a.id for a in shared.accounts] == ["C070000017", "C070000027", "C070000047"]
