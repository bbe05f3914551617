"""A user's clone has nothing beside it: the suite must find everything inside the repository.

The test clones the committed tree into an empty temporary folder (no `../shared`, no `var/`)
and runs the sample-data tests there, so a fixture that reaches outside the repo fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_fresh_clone_runs_the_sample_data_tests(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "empty" / "clone"
    clone.parent.mkdir()
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)],
        check=True,
        timeout=120,
    )
    assert sorted(p.name for p in clone.parent.iterdir()) == ["clone"]
    env = {**os.environ, "PYTHONPATH": str(clone)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/resolver/test_sample_data.py",
            "tests/layout/test_boundaries.py",
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    assert (clone / "tests" / "data" / "sample" / "expected_address.csv").is_file()
