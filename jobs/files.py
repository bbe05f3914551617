"""Files the job writes: owner-only, created exclusively, renamed into place, never via a symlink.

Everything the job writes holds personal data (names, addresses, audit trails, messages) and runs
unattended, often under a permissive umask (cron, containers, `umask 000` in a wrapper script).
So every output goes through this one module:
- files are 0600 and folders the job creates 0700, set explicitly rather than left to the umask;
- an output file is written to a temporary file opened with O_CREAT|O_EXCL|O_NOFOLLOW in the same
  folder and renamed over the final name. A symlink planted at the temporary name makes the open
  fail instead of writing through it; one planted at the final name is *replaced* by the rename
  (rename(2) never follows the last component), so its target is never touched. A reader never
  sees a half-written file.
- appending (the error log) opens with O_NOFOLLOW and O_APPEND, creating the file 0600.

Shared by every stage that writes; imports nothing from them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from jobs.errors import InputError

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "append_private",
    "create_private_file",
    "make_private_dirs",
    "private_output",
    "write_private_bytes",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
_TEMP_ATTEMPTS = 16
_EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _cannot(path: Path, what: str, exc: OSError) -> InputError:
    return InputError(f"cannot {what}: {exc.strerror or exc}", file=str(path))


def make_private_dirs(folder: Path) -> None:
    """Create `folder` and its missing parents as 0700; folders that exist are left alone.

    `Path.mkdir(parents=True, mode=…)` applies the mode to the last folder only (and through the
    umask); each missing folder here is created and then chmod-ed to exactly 0700.
    """
    missing: list[Path] = []
    current = folder
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, PRIVATE_DIR_MODE)
        except FileExistsError:
            if path.is_dir():
                continue  # created meanwhile by someone else: not ours to change
            raise _cannot(path, "create the folder", FileExistsError(17, "not a folder")) from None
        except OSError as exc:
            raise _cannot(path, "create the folder", exc) from None
        os.chmod(path, PRIVATE_DIR_MODE)
    if not folder.is_dir():
        raise InputError("is not a folder", file=str(folder))


def create_private_file(path: Path) -> bool:
    """Create `path` empty and 0600 unless something exists there; True when it was created.

    For files another library then fills in place (a SQLite database): created first by us so
    that its mode is ours, not the library's default under the umask.
    """
    make_private_dirs(path.parent)
    try:
        fd = os.open(path, _EXCLUSIVE, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise _cannot(path, "create the file", exc) from None
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def _open_temporary(folder: Path, name: str) -> tuple[Path, int]:
    for _ in range(_TEMP_ATTEMPTS):
        temporary = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return temporary, os.open(temporary, _EXCLUSIVE, PRIVATE_FILE_MODE)
        except FileExistsError:
            continue  # a leftover or a planted name: never reuse it, draw another
        except OSError as exc:
            raise _cannot(temporary, "create a temporary file", exc) from None
    raise InputError(f"no free temporary name after {_TEMP_ATTEMPTS} tries", file=str(folder))


@contextmanager
def private_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` (0600) when the block ends without an exception.

    On an exception the temporary file is removed and `path` keeps whatever it held before.
    A symlink at `path` is replaced by the new file; its target is not written.
    """
    make_private_dirs(path.parent)
    if path.is_dir() and not path.is_symlink():
        raise InputError("is a folder, expected a file name", file=str(path))
    temporary, fd = _open_temporary(path.parent, path.name)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have taken bits off the open's mode
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_private_bytes(path: Path, data: bytes) -> None:
    """`path` holds exactly `data`, written through `private_output`."""
    with private_output(path) as f:
        f.write(data)


def append_private(path: Path, text: str) -> None:
    """Append `text` to a log file, created (with its folders) owner-only; never via a symlink."""
    make_private_dirs(path.parent)
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise _cannot(path, "open the log file", exc) from None
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        if os.fstat(fd).st_size == 0:
            os.fchmod(fd, PRIVATE_FILE_MODE)  # new: exactly 0600, whatever the umask took off
        f.write(text)
