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

import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from resolver.dedupe import AccountBuilder, DeliveryBuilder
from resolver.model import AccountKind, Audience, Delivery, Reason, Source

__all__ = ["HOT_LIMIT", "SpillKeys", "SpillStore"]

HOT_LIMIT = 20_000
"""Deliveries kept in memory between two writes: a few MB, a few hundred customers' worth."""

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
    """A `resolver.dedupe.AddressIndex` in a temporary SQLite file: counts-only resolutions.

    Each group's key and `send` address, no more (`resolve`, approvals): no delivery is built,
    pickled or read back, so memory is flat and a group costs one small row.
    """

    def __init__(self, *, hot_limit: int | None = None) -> None:
        self._folder, self._db = _private_db()
        # email NULL: the same string as the key (the usual case in `address` mode).
        self._db.execute(
            "CREATE TABLE groups (hash INTEGER NOT NULL, key TEXT NOT NULL, email TEXT)"
        )
        self._db.execute("CREATE INDEX groups_hash ON groups (hash)")
        self._hot: dict[str, str] = {}
        self._hot_limit = HOT_LIMIT if hot_limit is None else hot_limit

    def _flush(self) -> None:
        # In hash order: the index's pages are then visited once each, in order, per batch
        # instead of at random for every row (a third less CPU at a million groups).
        self._db.executemany(
            "INSERT INTO groups (hash, key, email) VALUES (?, ?, ?)",
            sorted(
                [
                    (hash(key) & _HASH_BITS, key, None if email == key else email)
                    for key, email in self._hot.items()
                ]
            ),
        )
        self._hot.clear()

    def add_key(self, key: str, email: str) -> None:
        if len(self._hot) >= self._hot_limit:
            self._flush()
        self._hot[key] = email

    def email_of(self, key: str) -> str | None:
        hot = self._hot.get(key)
        if hot is not None:
            return hot
        rows: list[tuple[str, str | None]] = self._db.execute(
            "SELECT key, email FROM groups WHERE hash = ?", (hash(key) & _HASH_BITS,)
        ).fetchall()
        for found, email in rows:
            if found == key:  # the same hash for another key is a collision, not this group
                return key if email is None else email
        return None

    def close(self) -> None:
        """Remove the file; the index cannot be used afterwards."""
        self._db.close()
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
