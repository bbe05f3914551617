"""Output paths (issue 6): written beside the target and renamed, never through a symlink.

The policy, for every writer (`jobs.files`): a symlink planted at the final name is *replaced*
by the new file and its target is never written; one planted at a temporary name is never
followed (exclusive create) and never removed. `dry-run --out DIR` never deletes what it did not
write: a `DIR/messages` without its marker, or with a file it did not write, is exit 2.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

import jobs.files
from jobs.errors import InputError
from jobs.files import private_output, write_private_bytes
from jobs.reports.dryrun import MARKER
from tests.safety.conftest import AS_OF, CAMPAIGN, RUN_ID, Cli

PRECIOUS = b"the operator's own file\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(PRECIOUS)
    return path


# --- the helper -------------------------------------------------------------------------------


def test_a_symlink_at_the_final_name_is_replaced_and_its_target_untouched(
    tmp_path: Path, victim: Path
) -> None:
    final = tmp_path / "out" / "report.csv"
    final.parent.mkdir()
    final.symlink_to(victim)
    write_private_bytes(final, b"new")
    assert not final.is_symlink()
    assert final.read_bytes() == b"new"
    assert victim.read_bytes() == PRECIOUS


def test_a_symlink_at_the_temporary_name_is_never_followed(
    tmp_path: Path, victim: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    tokens = itertools.chain(["planted"], itertools.repeat("fresh"))
    monkeypatch.setattr(jobs.files.secrets, "token_hex", lambda _n: next(tokens))
    planted = folder / ".report.csv.planted.tmp"
    planted.symlink_to(victim)
    write_private_bytes(folder / "report.csv", b"new")
    assert (folder / "report.csv").read_bytes() == b"new"
    assert victim.read_bytes() == PRECIOUS
    assert planted.is_symlink()  # not ours: left alone
    assert sorted(os.listdir(folder)) == [".report.csv.planted.tmp", "report.csv"]


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "report.csv"
    final.write_bytes(b"previous")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), private_output(final) as f:
        f.write(b"half")
        raise Boom
    assert final.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["report.csv"]


def test_a_folder_at_the_final_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "report.csv").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        write_private_bytes(tmp_path / "report.csv", b"x")


# --- the writers ------------------------------------------------------------------------------


@pytest.fixture
def loaded(swmail: Cli, sample_data: Path) -> Cli:
    swmail.env["SWMAIL_DATABASE_URL"] = "sqlite:///swmail.sqlite3"
    assert swmail("db", "init").code == 0
    assert swmail("db", "import", str(sample_data)).code == 0
    return swmail


def dry_run(swmail: Cli, out: Path) -> tuple[int, str]:
    result = swmail("dry-run", "--campaign", CAMPAIGN, "--as-of", AS_OF, "--out", str(out))
    return result.code, result.err


def test_dry_run_replaces_symlinks_at_its_file_names(
    loaded: Cli, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "dry"
    out.mkdir()
    (out / "audit.csv").symlink_to(victim)
    (out / "warnings.csv").symlink_to(victim)
    code, err = dry_run(loaded, out)
    assert code == 0, err
    assert victim.read_bytes() == PRECIOUS
    assert not (out / "audit.csv").is_symlink()
    assert (out / "audit.csv").read_bytes().startswith(b"\xef\xbb\xbfrun_id,")


def test_dry_run_refuses_a_messages_folder_it_did_not_create(loaded: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    (out / "messages").mkdir(parents=True)
    (out / "messages" / "keep-me.txt").write_bytes(PRECIOUS)
    code, err = dry_run(loaded, out)
    assert code == 2
    assert "messages" in err
    assert "not written by dry-run" in err
    assert (out / "messages" / "keep-me.txt").read_bytes() == PRECIOUS
    assert sorted(os.listdir(out)) == ["messages"]  # nothing else written either


def test_dry_run_refuses_a_symlinked_messages_folder(
    loaded: Cli, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "dry"
    out.mkdir()
    (out / "messages").symlink_to(victim.parent, target_is_directory=True)
    code, _ = dry_run(loaded, out)
    assert code == 2
    assert victim.read_bytes() == PRECIOUS


def test_a_rerun_into_its_own_output_replaces_it(loaded: Cli, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    assert dry_run(loaded, out)[0] == 0
    first = sorted(os.listdir(out / "messages"))
    assert MARKER in first
    (out / "messages" / "1.eml").write_bytes(b"stale")
    code, err = dry_run(loaded, out)
    assert code == 0, err
    assert sorted(os.listdir(out / "messages")) == first
    assert (out / "messages" / "1.eml").read_bytes() != b"stale"
    assert sorted(os.listdir(out)) == ["audit.csv", "messages", "warnings.csv"]


def test_a_rerun_refuses_when_someone_added_a_file_to_its_messages(
    loaded: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "dry"
    assert dry_run(loaded, out)[0] == 0
    (out / "messages" / "notes.txt").write_bytes(PRECIOUS)
    code, err = dry_run(loaded, out)
    assert code == 2
    assert "notes.txt" in err
    assert (out / "messages" / "notes.txt").read_bytes() == PRECIOUS


def test_audit_export_replaces_a_symlink_at_its_name(
    swmail: Cli, sent_sample_run: str, tmp_path: Path, victim: Path
) -> None:
    out = tmp_path / "audit.csv"
    out.symlink_to(victim)
    planted = tmp_path / "audit.csv.partial"  # the fixed temporary name writers used to use
    planted.symlink_to(victim)
    result = swmail(
        "audit", "export", "--run", RUN_ID, "--out", str(out), SWMAIL_DATABASE_URL=sent_sample_run
    )
    assert result.code == 0, result.err
    assert victim.read_bytes() == PRECIOUS
    assert not out.is_symlink()
    assert out.read_bytes().startswith(b"\xef\xbb\xbfrun_id,")
