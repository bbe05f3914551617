"""Customer accounts decided from plain rows: the resolution's hot path (issue 10).

A million customers are about three million candidates. Building each one as a `Candidate`
with its `Customer`, `User` and `Normalized` values and asking every rule of `resolver.rules`
about it cost several times the reading of the rows. Here the common account is decided from
the rows as the database returns them (`CUSTOMER_COLUMNS`, `MYPAGE_COLUMNS`, `USER_COLUMNS`):

- the skip rules are still only those of `resolver.rules`, run on a real `Candidate` once per
  distinct combination of the facts they read (`facts` in `decide`), and remembered: a handful of
  combinations cover a million candidates. A rule that reads a new fact must add it to
  `facts` (the identity tests fail otherwise);
- an account with anything the fast path does not decide itself — a warning to write (a name
  that loses control characters, an address that NFKC changes, `admin` after the cutoff,
  nobody reachable) — goes through the pure path, `Resolver.feed_customer`, and so does every
  partner (they are few).

tests/resolution/test_fast_path.py holds both paths to identical audit rows, warnings and
deliveries: the sample set and hypothesis-generated sets, both dedupe modes, three databases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from operator import itemgetter
from typing import Any, NamedTuple

from resolver.candidates import LEGACY_ADMIN_ID, customer_candidates
from resolver.dedupe import Deduper, group_key_of
from resolver.filters import customer_exclusion
from resolver.model import (
    AccountKind,
    AccountType,
    Audience,
    AuditRow,
    CampaignPolicy,
    Channel,
    ContractStatus,
    Customer,
    CustomerAccount,
    Decision,
    DedupeMode,
    MyPageContact,
    MyPageRole,
    Plan,
    Product,
    Reason,
    Source,
    User,
    UserStatus,
    Warning,
)
from resolver.normalize import address_and_key, strip_controls
from resolver.rules import INCLUDE_CODE, RuleContext, skip_reasons
from resolver.warnings import ADMIN_CUTOFF

__all__ = [
    "CUSTOMER_COLUMNS",
    "MYPAGE_COLUMNS",
    "USER_COLUMNS",
    "CustomerResult",
    "CustomerRows",
    "FastCustomers",
    "customer_account",
]

CUSTOMER_COLUMNS = (
    "corp_id",
    "company_name",
    "channel",
    "reseller_partner_id",
    "plan",
    "contract_status",
    "applied_on",
    "is_oem",
    "mypage_postal_code",  # §2: My Page 会社基本設定; company_info_* is never read for mail
    "mypage_address",
)
"""The customers columns of SPEC §3 a resolution reads, in the order of `CustomerRows.customer`."""

MYPAGE_COLUMNS = ("corp_id", "role", "name", "email")
USER_COLUMNS = ("corp_id", "user_id", "name", "email", "is_system_admin", "account_type", "status")

_ROLE_ORDER = {role.value: i for i, role in enumerate(MyPageRole)}  # contract manager, billing
_MYPAGE_SOURCE = {
    MyPageRole.CONTRACT_MANAGER.value: Source.MYPAGE_CONTRACT_MANAGER,
    MyPageRole.BILLING.value: Source.MYPAGE_BILLING,
}

# Enum members read once: looked up on their class they go through a Python-level descriptor.
_LEGACY_ADMIN, _SYSTEM_ADMIN = Source.LEGACY_ADMIN, Source.SYSTEM_ADMIN
_CUSTOMER, _CUSTOMER_KIND = Audience.CUSTOMER, AccountKind.CUSTOMER
_SKIP = Decision.SKIP
_DIRECT, _TERMINATED = Channel.DIRECT, ContractStatus.TERMINATED
_INCLUDE_CODE = dict(INCLUDE_CODE)  # a plain dict: no read-only view in between
_new_row = tuple.__new__  # AuditRow(...) and AuditRow._make run Python code for every row
_USER_ID = itemgetter(1)  # a user row's user_id, as a sort key without a Python call


class CustomerRows(NamedTuple):
    """One customer's rows as the database returns them (NULL text is None)."""

    # CUSTOMER_COLUMNS; applied_on a date, its ISO text (SQLite's DATE) or None: read through
    # `applied_on()`, since only an account with `admin` needs it.
    customer: tuple[Any, ...]
    contacts: Sequence[tuple[Any, ...]]  # MYPAGE_COLUMNS
    users: Sequence[tuple[Any, ...]]  # USER_COLUMNS, every user of the customer
    products: frozenset[str]  # products with an `active` contract


class CustomerResult(NamedTuple):
    """What one customer adds to a resolution: audit rows, filtered-out count, warnings."""

    rows: Sequence[AuditRow]
    excluded: int
    warnings: Sequence[Warning]


def _applied_on(value: date | str | None) -> date | None:
    # SQLite hands DATE columns back as their 'YYYY-MM-DD' text; the others as dates.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _role_order(row: tuple[Any, ...]) -> int:
    return _ROLE_ORDER[row[1]]


def _user_id(row: tuple[Any, ...]) -> str:
    user_id: str = row[1]
    return user_id


def customer_account(rows: CustomerRows) -> CustomerAccount:
    """The resolver values of one customer's rows (the pure path and `explain` use these)."""
    c = rows.customer
    applied_on = _applied_on(c[6])
    customer = Customer(
        corp_id=c[0],
        company_name=c[1] or "",
        channel=Channel(c[2]),
        reseller_partner_id=c[3] or None,
        plan=Plan(c[4]),
        contract_status=ContractStatus(c[5]),
        applied_on=applied_on,
        is_oem=bool(c[7]),
        postal_code=c[8] or "",
        address=c[9] or "",
    )
    return CustomerAccount(
        customer=customer,
        # §2: contract manager, then billing contact.
        contacts=tuple(
            MyPageContact(role=MyPageRole(r[1]), name=r[2] or "", email=r[3] or "")
            for r in sorted(rows.contacts, key=_role_order)
        ),
        # Sorted in Python: the database's order of user_id is its collation's.
        users=tuple(
            User(
                user_id=u[1],
                name=u[2] or "",
                email=u[3] or "",
                is_system_admin=bool(u[4]),
                account_type=AccountType(u[5]),
                status=UserStatus(u[6]),
            )
            for u in sorted(rows.users, key=_user_id)
        ),
        active_products=frozenset(Product(p) for p in rows.products),
    )


# One candidate's source, person id, row (contact or user), and the user's account_type and
# status (None for a contact).
_Person = tuple[Source, str, tuple[Any, ...], str | None, str | None]
# One candidate before its placement: source, person id, name, raw e-mail, normalized address,
# delivery key (both None when invalid or missing) and its skip codes (empty: included).
_Pending = tuple[Source, str, str, str, str | None, str | None, tuple[Reason, ...]]


class FastCustomers:
    """Decides customer accounts from their rows, sharing the resolver's dedupe and context."""

    __slots__ = (
        "_ctx",
        "_deduper",
        "_excluded",
        "_filtered",
        "_in_audience",
        "_mode",
        "_policy",
        "_skips",
    )

    def __init__(self, policy: CampaignPolicy, ctx: RuleContext, deduper: Deduper) -> None:
        self._policy = policy
        self._ctx = ctx
        self._deduper = deduper
        self._mode = deduper.mode
        self._in_audience = Audience.CUSTOMER in policy.audiences
        self._filtered = policy.plans is not None or policy.products is not None
        # Memos: rule outcomes by the facts they read; filter outcomes by (plan, products).
        self._skips: dict[tuple[object, ...], tuple[Reason, ...]] = {}
        self._excluded: dict[tuple[str, frozenset[str]], bool] = {}

    def _outside_filters(self, rows: CustomerRows) -> bool:
        plan_products = (rows.customer[4], rows.products)
        outside = self._excluded.get(plan_products)
        if outside is None:
            outside = customer_exclusion(customer_account(rows), self._policy) is not None
            self._excluded[plan_products] = outside
        return outside

    def _rule_outcome(
        self, rows: CustomerRows, source: Source, person_id: str, facts: tuple[object, ...]
    ) -> tuple[Reason, ...]:
        """The rules themselves, on the real candidate, the first time these facts occur."""
        wanted = (source, person_id)
        (candidate,) = (
            c
            for c in customer_candidates(customer_account(rows))
            if (c.source, c.person_id) == wanted
        )
        found = self._skips[facts] = skip_reasons(candidate, self._ctx)
        return found

    def decide(self, rows: CustomerRows) -> CustomerResult | None:
        """The account's result, or None when it needs the pure path (nothing changed then)."""
        c = rows.customer
        corp_id: str = c[0]
        contacts = rows.contacts
        if len(contacts) > 1:
            contacts = sorted(contacts, key=_role_order)
        users = rows.users
        if len(users) > 1:
            users = sorted(users, key=_USER_ID)
        legacy: list[tuple[Any, ...]] = []
        admins: list[tuple[Any, ...]] = []
        for u in users:
            # §4: `admin` whatever its flag; any other user with the permission.
            if u[1].lower() == LEGACY_ADMIN_ID:
                legacy.append(u)
            elif u[4]:
                admins.append(u)
        count = len(contacts) + len(legacy) + len(admins)
        if not self._in_audience or (self._filtered and self._outside_filters(rows)):
            return CustomerResult((), count, ())
        if legacy and not c[7]:
            applied_on = _applied_on(c[6])
            if applied_on is not None and applied_on >= ADMIN_CUTOFF:
                return None  # ADMIN_AFTER_CUTOFF

        # Candidates in §4 order: My Page contacts, then `admin`, then the other admins; each
        # with the user's account_type and status (None for a contact).
        people: list[_Person] = [(_MYPAGE_SOURCE[r[1]], "", r, None, None) for r in contacts]
        if legacy:
            people.extend([(_LEGACY_ADMIN, u[1], u, u[5], u[6]) for u in legacy])
        if admins:
            people.extend([(_SYSTEM_ADMIN, u[1], u, u[5], u[6]) for u in admins])

        mode = self._mode
        by_address = mode is DedupeMode.ADDRESS
        suppressed = self._ctx.suppressed
        already_sent = self._ctx.already_sent
        memo = self._skips
        channel, status = c[2], c[5]
        pending: list[_Pending] = []
        reachable = False
        for source, person_id, found, account_type, user_status in people:
            name: str = found[2] or ""
            if not name.isprintable():
                name, sanitized = strip_controls(name)
                if sanitized:
                    return None  # HEADER_SANITIZED: the pure path writes it
            raw: str = found[3] or ""
            address, key, missing, _error, changed = address_and_key(raw)
            if changed:
                return None  # EMAIL_NORMALIZED: the pure path writes it
            # Everything the skip rules of `resolver.rules` read about a customer candidate:
            # channel (RESELLER_CHANNEL), contract status (CONTRACT_ENDED), account_type
            # (GROUP_ACCOUNT), user status (USER_NOT_ACTIVE), missing (MISSING_EMAIL), no
            # address (INVALID_EMAIL, with `missing`), suppressed (SUPPRESSED) and already sent
            # (ALREADY_SENT).
            if key is None:
                group_key = None
                facts = (channel, status, account_type, user_status, missing, True, False, False)
            else:
                group_key = key if by_address else group_key_of(key, corp_id, mode)
                facts = (
                    channel,
                    status,
                    account_type,
                    user_status,
                    False,
                    False,
                    key in suppressed,
                    group_key in already_sent,
                )
            skip = memo.get(facts)
            if skip is None:
                skip = self._rule_outcome(rows, source, person_id, facts)
            if not skip:
                reachable = True
            pending.append((source, person_id, name, raw, address, group_key, skip))

        # UNREACHABLE_CUSTOMER: a direct, not terminated customer whose every candidate (if
        # any) is skipped. Nothing was placed yet, so the pure path can take the account over.
        if not reachable and channel == _DIRECT and status != _TERMINATED:
            return None

        company: str = c[1] or ""
        postal: str = c[8] or ""
        postal_address: str = c[9] or ""
        place = self._deduper.place
        counting = self._deduper.count if self._deduper.counting else None
        out: list[AuditRow] = []
        for source, person_id, name, raw, address, group_key, skip in pending:
            if skip:
                decision, reasons, delivery_email, delivery_key = _SKIP, skip, None, None
            else:
                assert address is not None and group_key is not None
                if counting is not None:
                    decision, reasons, delivery_email = counting(
                        group_key, address, _INCLUDE_CODE[source]
                    )
                else:
                    decision, reasons, delivery_email = place(
                        group_key,
                        address,
                        name,
                        _CUSTOMER,
                        _INCLUDE_CODE[source],
                        _CUSTOMER_KIND,
                        corp_id,
                        company,
                        source,
                        postal,
                        postal_address,
                    )
                delivery_key = group_key
            out.append(
                _new_row(
                    AuditRow,
                    (
                        decision,
                        reasons,
                        _CUSTOMER,
                        corp_id,
                        company,
                        source,
                        person_id,
                        name,
                        raw,
                        delivery_email,
                        delivery_key,
                    ),
                )
            )
        return _new_row(CustomerResult, (out, 0, ()))
