"""The bounce mailbox: a Maildir (Postfix/Dovecot `home_mailbox = Maildir/`) or an mbox file.

Read only: nothing is moved, flagged or deleted, so the import can run from cron as often as
wanted (each run reads the whole mailbox again and records only what is new) and the mailbox
stays the operator's to rotate.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

from jobs.errors import InputError
from jobs.i18n import tr

__all__ = ["read_maildir", "read_mbox"]


def read_maildir(folder: Path) -> Iterator[tuple[str, bytes]]:
    """(file name, bytes) of every message in `new/` and `cur/`, in name order."""
    if not (folder / "new").is_dir() or not (folder / "cur").is_dir():
        raise InputError(
            tr("{folder}: not a Maildir (it needs the folders new/ and cur/)", folder=folder)
        )
    box = mailbox.Maildir(folder, factory=None, create=False)
    for key in sorted(box.keys()):
        yield key, box.get_bytes(key)


def read_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """(`message N`, bytes) of every message of an mbox file, in file order."""
    if not path.is_file():
        raise InputError(tr("{path}: no such mbox file", path=path))
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for n, key in enumerate(box.keys(), start=1):
            yield f"message {n}", box.get_bytes(key)
    finally:
        box.close()
