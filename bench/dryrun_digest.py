"""Digest of a dry run's output: proves an optimization changed no byte a user can see.

    .venv/bin/python bench/dryrun_digest.py DIR

Prints one SHA-256 each for `audit.csv`, `warnings.csv` and the messages (`messages/<n>.eml`
read in seq order, each prefixed with its file name), and one over the three. The `Date:` header
is the only part of a message that depends on the clock, so its line is blanked before hashing;
every other byte counts, Message-IDs included. Compare the digests before and after a change
(issue 10: the audit's row order, the `send` row choice, warnings and Message-IDs must not move).
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["digest"]

_DATE = re.compile(rb"^Date: [^\r\n]*", re.MULTILINE)


def digest(out: Path) -> dict[str, str]:
    """The digests of one dry-run folder: audit, warnings, messages and all."""
    found: dict[str, str] = {}
    for name in ("audit.csv", "warnings.csv"):
        found[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    messages = hashlib.sha256()
    folder = out / "messages"
    count = 0
    for seq in sorted(int(p.stem) for p in folder.glob("*.eml")):
        count += 1
        messages.update(f"{seq}.eml\n".encode("ascii"))
        messages.update(_DATE.sub(b"Date: -", (folder / f"{seq}.eml").read_bytes(), count=1))
    found["messages"] = messages.hexdigest()
    found["message_count"] = str(count)
    total = hashlib.sha256(
        "".join(found[k] for k in ("audit.csv", "warnings.csv", "messages")).encode()
    )
    found["all"] = total.hexdigest()
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    for key, value in digest(Path(args[0])).items():
        print(f"{key:14} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
