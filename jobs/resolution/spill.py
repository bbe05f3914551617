"""The deliveries of a resolution in a temporary SQLite file (issue 10: memory flat).

A resolution used to keep every delivery in memory until the end, about 600 bytes each: 1.3 GB
at a million customers. Here a delivery is written out in batches as resolution goes; only the
most recent ones stay in memory (`HOT_LIMIT`), because nearly every merge concerns the account
being resolved. A later account that shares an address (one tax accountant for many customers)
reads its delivery back, changes it, and it is written again with the next batch.

The file lives in a private temporary folder, is never committed anywhere (journal off) and is
removed by `close()` (or when the store is garbage collected): it is a cache of this process,
not data.
"""

from __future__ import annotations

import marshal
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resolver.dedupe import AccountBuilder, DeliveryBuilder
from resolver.model import AccountKind, Audience, Delivery, Reason, Source

__all__ = ["HOT_LIMIT", "PROOF_CHUNK", "SpillKeys", "SpillStore"]

HOT_LIMIT = 20_000
"""Deliveries kept in memory between two writes: a few MB, a few hundred customers' worth."""
PROOF_CHUNK = 200_000
"""Merged keys held in memory at once while `SpillKeys.proven` checks them (about 20 MB)."""

_HASH_BITS = (1 << 62) - 1  # within SQLite's signed 64-bit INTEGER

_Account = tuple[str, str, str, tuple[str, ...], str, str]
_State = tuple[str, str, tuple[str, ...], tuple[_Account, ...]]


def _state(builder: DeliveryBuilder) -> bytes:
    # `_value_`, not `.value`: the property is a Python-level descriptor, read for every code.
    state: _State = (
        builder.name,
        builder.audience._value_,
        tuple([r._value_ for r in builder.reasons]),
        tuple(
            [
                (
                    a.kind._value_,
                    a.id,
                    a.name,
                    tuple([s._value_ for s in a.roles]),
                    a.postal_code,
                    a.address,
                )
                for a in builder.accounts
            ]
        ),
    )
    return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _builder(seq: int, key: str, email: str, blob: bytes) -> DeliveryBuilder:
    name, audience, reasons, accounts = pickle.loads(blob)
    builder = DeliveryBuilder(seq, key, email, name, Audience(audience))
    builder.reasons = tuple(Reason(r) for r in reasons)
    for kind, account_id, account_name, roles, postal_code, address in accounts:
        builder.append(
            AccountBuilder(
                AccountKind(kind),
                account_id,
                account_name,
                tuple(Source(s) for s in roles),
                postal_code,
                address,
            )
        )
    return builder


def _private_db() -> tuple[tempfile.TemporaryDirectory[str], sqlite3.Connection]:
    folder = tempfile.TemporaryDirectory(prefix="swmail-deliveries-")
    db = sqlite3.connect(Path(folder.name) / "deliveries.sqlite3")
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "temp_store=FILE"):
        db.execute(f"PRAGMA {pragma}")
    return folder, db


class SpillKeys:
    """A `resolver.dedupe.KeyLog` in temporary files: the proof of a counts-only resolution.

    While resolving, the dedupe index answers from its hashes alone; this log appends, in
    batches, the key of every new group and every key merged on a seen hash. `proven()` then
    reads them back: every merged key must be one of the groups' keys. Appending costs a quarter
    of keeping the keys in an indexed table to look each merge up at once (1.6 s against 5.7 s
    for the 1.6 million groups of 1M customers, issue 10), and a counts-only caller reads nothing
    before the end, when the proof is in.
    """

    def __init__(self, *, batch: int | None = None, chunk: int | None = None) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="swmail-keys-")
        folder = Path(self._folder.name)
        self._files = {name: (folder / name).open("w+b") for name in ("groups", "merged")}
        self._groups: list[str] = []  # not yet written, in the order they came
        self._merged: list[str] = []
        self._batch = HOT_LIMIT if batch is None else batch
        self._chunk = PROOF_CHUNK if chunk is None else chunk
        self.merged = 0  # keys to prove (for the benchmark's report)
        self._refuted = False

    def _write(self, name: str, pending: list[str]) -> None:
        if pending:
            marshal.dump(pending, self._files[name])
            pending.clear()

    def add(self, key: str) -> None:
        pending = self._groups
        pending.append(key)
        if len(pending) >= self._batch:
            self._write("groups", pending)

    def check(self, key: str) -> None:
        self.merged += 1
        pending = self._merged
        pending.append(key)
        if len(pending) >= self._batch:
            self._write("merged", pending)

    def _batches(self, name: str) -> Iterator[list[str]]:
        file = self._files[name]
        file.seek(0)
        while True:
            try:
                yield marshal.load(file)
            except EOFError:
                return

    def refute(self) -> None:
        """Record a failed proof made elsewhere (a worker's chunk): `proven()` is then False."""
        self._refuted = True

    def proven(self) -> bool:
        """True when every merged key is a group's key: no two keys shared a hash."""
        if self._refuted:
            return False
        self._write("groups", self._groups)
        self._write("merged", self._merged)
        # A group's hash is new when it is added, so the groups' keys have distinct hashes, and
        # a merged key (of that hash) is that group's key exactly when it is among them.
        unproven: set[str] = set()
        for batch in self._batches("merged"):
            unproven.update(batch)
            if len(unproven) >= self._chunk and not self._all_found(unproven):
                return False
        return self._all_found(unproven)

    def _all_found(self, unproven: set[str]) -> bool:
        # Each chunk of merged keys against every group's key, so that memory stays bounded.
        for batch in self._batches("groups"):
            if not unproven:
                break
            unproven.difference_update(batch)
        found = not unproven
        unproven.clear()
        return found

    def close(self) -> None:
        """Remove the files; the log cannot be used afterwards."""
        for file in self._files.values():
            file.close()
        self._folder.cleanup()


class SpillStore:
    """A `resolver.dedupe.DeliveryStore` in a temporary SQLite file (counts only: `SpillKeys`)."""

    def __init__(self, *, hot_limit: int | None = None) -> None:
        self._folder, self._db = _private_db()
        self._db.execute(
            "CREATE TABLE deliveries"
            " (seq INTEGER PRIMARY KEY, hash INTEGER NOT NULL, key TEXT NOT NULL,"
            " email TEXT NOT NULL, state BLOB NOT NULL)"
        )
        self._db.execute("CREATE INDEX deliveries_hash ON deliveries (hash)")
        self._hot: dict[str, DeliveryBuilder] = {}
        self._hot_limit = HOT_LIMIT if hot_limit is None else hot_limit
        self.reads = 0  # deliveries read back to be changed (for the benchmark's report)

    def _flush(self) -> None:
        if not self._hot:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO deliveries (seq, hash, key, email, state)"
            " VALUES (?, ?, ?, ?, ?)",
            [
                (b.seq, hash(b.key) & _HASH_BITS, b.key, b.email, _state(b))
                for b in self._hot.values()
            ],
        )
        self._hot.clear()

    def add(self, builder: DeliveryBuilder) -> None:
        # Written before the new one joins: the caller changes `builder` right after this call.
        if len(self._hot) >= self._hot_limit:
            self._flush()
        self._hot[builder.key] = builder

    def find(self, key: str) -> DeliveryBuilder | None:
        hot = self._hot.get(key)
        if hot is not None:
            return hot
        rows: list[Any] = self._db.execute(
            "SELECT seq, key, email, state FROM deliveries WHERE hash = ?",
            (hash(key) & _HASH_BITS,),
        ).fetchall()
        for seq, found, email, blob in rows:
            if found == key:  # the same hash for another key is a collision, not this group
                self.reads += 1
                builder = _builder(seq, found, email, blob)
                self._hot[key] = builder  # changed by the caller, written with the next batch
                return builder
        return None

    def deliveries(self) -> Iterator[Delivery]:
        self._flush()
        cursor = self._db.execute("SELECT seq, key, email, state FROM deliveries ORDER BY seq")
        try:
            for seq, key, email, blob in cursor:
                yield _builder(seq, key, email, blob).freeze()
        finally:
            cursor.close()

    def close(self) -> None:
        """Remove the file; the store cannot be used afterwards."""
        self._db.close()
        self._folder.cleanup()
