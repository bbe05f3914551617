"""Determinism, the summary and the command line of the demo generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import REPO
from tests.demo.demo_set import read_demo
from tools.demo_data import FILES, EdgeCase, generate, main


def _bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, seed=42)
    generate(tmp_path / "b", customers=300, seed=42)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")


def test_another_seed_gives_another_data_set(tmp_path: Path) -> None:
    generate(tmp_path / "a", customers=300, seed=42)
    generate(tmp_path / "b", customers=300, seed=43)
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    assert all(a[name] != b[name] for name in FILES)


def test_regenerating_into_the_same_folder_replaces_the_files(tmp_path: Path) -> None:
    generate(tmp_path, customers=300, seed=1)
    generate(tmp_path, customers=100, seed=2)
    assert len(read_demo(tmp_path)["customers.csv"]) == 100


def test_summary_counts_what_the_files_hold(tmp_path: Path) -> None:
    summary = generate(tmp_path, customers=300, seed=3)
    demo = read_demo(tmp_path)
    assert summary.rows == {name: len(demo[name]) for name in FILES}
    assert summary.customers == 300
    assert summary.partners == len(demo["partners.csv"])
    assert all(summary.planted[edge] >= 3 for edge in EdgeCase)
    assert "customers 300" in summary.line()


def test_a_tiny_demo_is_still_valid(tmp_path: Path) -> None:
    summary = generate(tmp_path, customers=5, seed=9)
    demo = read_demo(tmp_path)
    assert len(demo["customers.csv"]) == 5
    corp_ids = {r["corp_id"] for r in demo["customers.csv"]}
    assert {r["corp_id"] for r in demo["users.csv"]} <= corp_ids
    # five customers hold five planted cases at most; the summary says which
    assert sum(summary.planted[e] for e in EdgeCase if e.startswith(("email", "admin"))) <= 5


def test_cli_prints_one_summary_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [str(tmp_path / "out"), "--customers", "120", "--seed", "5"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    assert "customers 120" in lines[0] and "seed 5" in lines[0]
    assert len(read_demo(tmp_path / "out")["customers.csv"]) == 120


def test_cli_rejects_zero_customers(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [str(tmp_path), "--customers", "0"])
    assert result.exit_code == 2
    assert "--customers" in result.output
    assert not (tmp_path / "customers.csv").exists()


def test_cli_reports_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(main, [str(blocker / "out"), "--customers", "10"])
    assert result.exit_code == 2
    assert "cannot write" in result.output and "OUT_DIR" in result.output


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "tools.demo_data", str(tmp_path), "--customers", "50"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("\n") == 1 and "customers 50" in completed.stdout
    assert len(read_demo(tmp_path)["customers.csv"]) == 50
