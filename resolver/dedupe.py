"""Dedupe (SPEC §4 "Dedupe"): included candidates sharing an address make one delivery.

The caller feeds included candidates in resolution order, so the first candidate of a group is
the spec's deterministic `send` choice and every later one is `merged`.

What stays in memory is a compact index: the set of the groups' key hashes (about 90 bytes a
delivery at a million customers). The deliveries themselves live in a `DeliveryStore`: in memory
for tests and small sets (`MemoryStore`), in a temporary file for a real run
(`jobs.resolution.spill`), so that memory does not grow with the data set (issue 10). A hash
that is in the index sends the lookup to the store, which compares the whole key: two addresses
whose hashes collide still make two deliveries.

A counts-only resolution (`resolve`, approvals) keeps no delivery: it decides from the hashes
alone (`count`) and hands a `KeyLog` what proves, at the end, that no two keys collided.
Groups counted apart (a parallel count's chunks) join in order through `absorb`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar, cast

from resolver.model import (
    AccountKind,
    AccountRef,
    Audience,
    Candidate,
    Decided,
    Decision,
    DedupeMode,
    Delivery,
    Reason,
    Source,
)

__all__ = [
    "AccountBuilder",
    "Deduper",
    "DeliveryBuilder",
    "DeliveryStore",
    "KeyLog",
    "MemoryStore",
    "group_key",
    "group_key_of",
]

_T = TypeVar("_T", Reason, Source)

# Above this many accounts a delivery indexes them (one tax accountant's address on thousands of
# customers); below it a scan is cheaper than a dict per delivery.
_SCAN_LIMIT = 8

# Python's str hash, cut to 60 bits: an int of two 30-bit digits (32 bytes) instead of three.
_HASH_BITS = (1 << 60) - 1

# Read once: an enum member looked up on its class goes through a Python-level descriptor, and
# `place` runs for every included candidate.
_SEND, _MERGED = Decision.SEND, Decision.MERGED
_DUPLICATE_ADDRESS = Reason.DUPLICATE_ADDRESS
# The one-element tuples of every delivery's first include code and first role, shared.
_ONE: dict[Reason | Source, tuple[Reason, ...] | tuple[Source, ...]] = {
    **{reason: (reason,) for reason in Reason},
    **{source: (source,) for source in Source},
}


def group_key_of(key: str, account_id: str, mode: DedupeMode) -> str:
    """The dedupe group of an address key: per account when the campaign says so (§4)."""
    if mode is DedupeMode.ADDRESS_PER_ACCOUNT:
        return f"{key}|{account_id}"
    return key


def group_key(c: Candidate, mode: DedupeMode) -> str:
    """The dedupe group of an included candidate: its key, per account when the mode says so."""
    key = c.normalized.key
    if key is None:
        raise ValueError(f"candidate {c.source}|{c.account_id}|{c.person_id} has no address")
    return group_key_of(key, c.account_id, mode)


class AccountBuilder:
    """One account of a delivery being built (`AccountRef` once frozen)."""

    __slots__ = ("address", "id", "kind", "name", "postal_code", "roles")

    def __init__(
        self,
        kind: AccountKind,
        account_id: str,
        name: str,
        roles: tuple[Source, ...],
        postal_code: str,
        address: str,
    ) -> None:
        self.kind = kind
        self.id = account_id
        self.name = name
        self.roles = roles
        self.postal_code = postal_code
        self.address = address

    def freeze(self) -> AccountRef:
        return AccountRef(
            kind=self.kind,
            id=self.id,
            name=self.name,
            roles=self.roles,
            postal_code=self.postal_code,
            address=self.address,
        )


class DeliveryBuilder:
    """One delivery being built: the send row's values plus every account merged into it."""

    __slots__ = ("accounts", "audience", "email", "index", "key", "name", "reasons", "seq")

    def __init__(self, seq: int, key: str, email: str, name: str, audience: Audience) -> None:
        self.seq = seq
        self.key = key
        self.email = email
        self.name = name
        self.audience = audience
        self.reasons: tuple[Reason, ...] = ()
        self.accounts: list[AccountBuilder] = []
        self.index: dict[tuple[AccountKind, str], AccountBuilder] | None = None

    def find(self, kind: AccountKind, account_id: str) -> AccountBuilder | None:
        # Customers arrive account by account, so the last account is the usual match.
        if self.accounts and self.accounts[-1].id == account_id and self.accounts[-1].kind is kind:
            return self.accounts[-1]
        if self.index is not None:
            return self.index.get((kind, account_id))
        for ref in self.accounts:
            if ref.id == account_id and ref.kind is kind:
                return ref
        return None

    def append(self, ref: AccountBuilder) -> None:
        self.accounts.append(ref)
        if self.index is not None:
            self.index[(ref.kind, ref.id)] = ref
        elif len(self.accounts) > _SCAN_LIMIT:
            self.index = {(a.kind, a.id): a for a in self.accounts}

    def freeze(self) -> Delivery:
        return Delivery(
            key=self.key,
            email=self.email,
            name=self.name,
            audience=self.audience,
            reasons=self.reasons,
            accounts=tuple(ref.freeze() for ref in self.accounts),
            seq=self.seq,
        )


class DeliveryStore(Protocol):
    """Where the deliveries of a resolution are kept while it runs."""

    def add(self, builder: DeliveryBuilder) -> None:
        """Keep a new delivery (its seq is one more than the last one added)."""

    def find(self, key: str) -> DeliveryBuilder | None:
        """The delivery of group `key`, to be changed in place, or None when there is none."""

    def deliveries(self) -> Iterator[Delivery]:
        """Every delivery in seq order, with every change made to it."""


class KeyLog(Protocol):
    """Where a counts-only resolution leaves the proof that its hashes told keys apart.

    `resolve` and approvals want counts, not rows or deliveries: the dedupe index then decides
    from the key hashes alone, and this log receives each new group's key and each key merged
    on a hash already seen. When every merged key is a group's key (`proven`), no two keys
    shared a hash and the counts are exact; when not, the caller resolves again with a store.
    """

    def add(self, key: str) -> None:
        """A new group's key (its hash was not seen before)."""

    def check(self, key: str) -> None:
        """A key whose hash was seen: merged, provided it is that group's key."""

    def proven(self) -> bool:
        """True when every checked key was added as a group's key."""


class MemoryStore:
    """Every delivery in memory: tests, `explain`, small data sets."""

    __slots__ = ("_groups",)

    def __init__(self) -> None:
        # Insertion order is seq order: the dict is both the index and the list.
        self._groups: dict[str, DeliveryBuilder] = {}

    def add(self, builder: DeliveryBuilder) -> None:
        self._groups[builder.key] = builder

    def find(self, key: str) -> DeliveryBuilder | None:
        return self._groups.get(key)

    def deliveries(self) -> Iterator[Delivery]:
        for builder in self._groups.values():
            yield builder.freeze()


class Deduper:
    """Groups included candidates into deliveries; the first one seen of a group is `send`."""

    __slots__ = ("_count", "_index", "_mode", "_seen", "_shared", "_store")

    def __init__(
        self,
        mode: DedupeMode,
        store: DeliveryStore | None = None,
        *,
        index: KeyLog | None = None,
    ) -> None:
        """`index`: counts only; no delivery is built, and a merged row names no address."""
        self._mode = mode
        self._store: DeliveryStore = MemoryStore() if store is None else store
        self._index = index
        self._seen: set[int] = set()  # hashes of the group keys: the compact index
        self._count = 0
        # Most deliveries have the same reasons/roles tuples: keep one copy of each.
        self._shared: dict[tuple[object, ...], tuple[object, ...]] = {}

    @property
    def mode(self) -> DedupeMode:
        return self._mode

    def _extend(self, values: tuple[_T, ...], value: _T) -> tuple[_T, ...]:
        if value in values:
            return values
        extended = (*values, value)
        return cast(tuple[_T, ...], self._shared.setdefault(extended, extended))

    def place(
        self,
        key: str,
        address: str,
        name: str,
        audience: Audience,
        include: Reason,
        kind: AccountKind,
        account_id: str,
        account_name: str,
        source: Source,
        postal_code: str,
        account_address: str,
    ) -> tuple[Decision, tuple[Reason, ...], str]:
        """Place one included candidate of group `key`: (decision, reasons, delivery address).

        The plain-values form of `add`, for callers that never build a `Candidate`.
        """
        if self._index is not None:
            return self.count(key, address, include)
        hashed = hash(key) & _HASH_BITS
        builder = self._store.find(key) if hashed in self._seen else None
        if builder is None:
            self._count += 1
            self._seen.add(hashed)
            builder = DeliveryBuilder(self._count, key, address, name, audience)
            self._store.add(builder)
            reasons = cast(tuple[Reason, ...], _ONE[include])
            builder.reasons = reasons
            roles = cast(tuple[Source, ...], _ONE[source])
            builder.accounts.append(
                AccountBuilder(kind, account_id, account_name, roles, postal_code, account_address)
            )
            return _SEND, reasons, address
        # Delivery.reasons: distinct include codes, the send row's first.
        builder.reasons = self._extend(builder.reasons, include)
        ref = builder.find(kind, account_id)
        if ref is None:
            builder.append(
                AccountBuilder(
                    kind,
                    account_id,
                    account_name,
                    self._extend((), source),
                    postal_code,
                    account_address,
                )
            )
        else:
            ref.roles = self._extend(ref.roles, source)
        # §4: DUPLICATE_ADDRESS comes after the include code.
        return _MERGED, (include, _DUPLICATE_ADDRESS), builder.email

    def _counted_new(self, key: str) -> bool:
        """Count a group by its hash alone: True when new; the key log proves it at the end."""
        index = self._index
        if index is None:
            raise RuntimeError("this resolution keeps its deliveries: place() them")
        seen = self._seen
        before = len(seen)
        seen.add(hash(key) & _HASH_BITS)  # one probe of a large set, not two
        if len(seen) == before:
            index.check(key)
            return False
        self._count += 1
        index.add(key)
        return True

    def count(
        self, key: str, address: str, include: Reason
    ) -> tuple[Decision, tuple[Reason, ...], str]:
        """`place` for a counts-only resolution: no delivery, no address on a merged row.

        The decisions come from the hashes alone, and the key log proves them at the end (two
        objects and a pickle per delivery, and a lookup per merge, issue 10).
        """
        if self._counted_new(key):
            return _SEND, cast(tuple[Reason, ...], _ONE[include]), address
        return _MERGED, (include, _DUPLICATE_ADDRESS), ""

    def absorb(self, sends: Iterable[tuple[str, Reason]]) -> list[Reason]:
        """Take in the groups of later customers counted apart, in their order.

        `sends` are the (key, include code) of their `send` rows (a chunk of a parallel
        resolution). A key that an earlier group already has makes its send row a merge: the
        include codes of those come back, for the caller's counts.
        """
        counted_new = self._counted_new
        return [include for key, include in sends if not counted_new(key)]

    @property
    def counting(self) -> bool:
        """True when the resolution keeps counts only (`count`, not `place`)."""
        return self._index is not None

    def add(self, c: Candidate, include: Reason) -> Decided:
        """Place one included candidate (in resolution order) and return its audit row."""
        address = c.normalized.address
        if address is None:
            raise ValueError(f"candidate {c.source}|{c.account_id}|{c.person_id} has no address")
        # §6: for customers the postal address is the My Page one, never company info.
        if c.customer is not None:
            postal_code, account_address = c.customer.postal_code, c.customer.address
        elif c.partner is not None:
            postal_code, account_address = c.partner.postal_code, c.partner.address
        else:
            raise ValueError(f"candidate {c.source}|{c.account_id}|{c.person_id} has no account")
        key = group_key(c, self._mode)
        decision, reasons, email = self.place(
            key,
            address,
            c.name,
            c.audience,
            include,
            c.account_kind,
            c.account_id,
            c.account_name,
            c.source,
            postal_code,
            account_address,
        )
        return Decided(
            candidate=c,
            decision=decision,
            reasons=reasons,
            delivery_key=key,
            delivery_email=email,
        )

    def __len__(self) -> int:
        return self._count

    def deliveries(self) -> Iterator[Delivery]:
        """Every delivery in first-seen order, numbered 1..n (`messages/<seq>.eml`)."""
        if self._index is not None:
            raise RuntimeError("this resolution kept only the dedupe keys, not the deliveries")
        return self._store.deliveries()
