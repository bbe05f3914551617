"""Plain values of the delivery policy (SPEC §3–§4).

Everything here is immutable and free of I/O so that the policy can be tested, explained and
replayed without a database. Enum values are the public spellings of SPEC §3/§4: they appear in
CSV files, audit rows and JSON output, so they change only on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "REASON_SEPARATOR",
    "AccountKind",
    "AccountRef",
    "AccountType",
    "Audience",
    "AuditRow",
    "CampaignPolicy",
    "Candidate",
    "Channel",
    "ContactRole",
    "ContactStatus",
    "ContractStatus",
    "Customer",
    "CustomerAccount",
    "Decided",
    "Decision",
    "DedupeMode",
    "Delivery",
    "DeliveryStatus",
    "Excluded",
    "ExclusionFilter",
    "MyPageContact",
    "MyPageRole",
    "Normalized",
    "Partner",
    "PartnerAccount",
    "PartnerContact",
    "PartnerKind",
    "PartnerStatus",
    "Plan",
    "Product",
    "ProductStatus",
    "Reason",
    "Source",
    "SuppressionReason",
    "User",
    "UserStatus",
    "Warning",
    "WarningCode",
    "join_reasons",
    "split_reasons",
]


# --- source enumerations (SPEC §3: lower-case and exact) -------------------------------------


class Channel(StrEnum):
    DIRECT = "direct"
    RESELLER = "reseller"


class Plan(StrEnum):
    FREE = "free"
    PAID = "paid"


class ContractStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class MyPageRole(StrEnum):
    CONTRACT_MANAGER = "contract_manager"
    BILLING = "billing"


class AccountType(StrEnum):
    NORMAL = "normal"
    GROUP = "group"


class UserStatus(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    DELETED = "deleted"


class PartnerKind(StrEnum):
    RESELLER = "reseller"
    PARTNER = "partner"
    IMPLEMENTATION = "implementation"


class PartnerStatus(StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class ContactRole(StrEnum):
    CONTACT = "contact"
    CERTIFIED_IMPLEMENTER = "certified_implementer"


class ContactStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Product(StrEnum):
    SALES = "sales"
    ACCOUNTING = "accounting"
    PAYROLL = "payroll"


class ProductStatus(StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class SuppressionReason(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    MANUAL = "manual"


# --- resolution enumerations (SPEC §4–§5) -----------------------------------------------------


class Audience(StrEnum):
    """Declaration order is the dedupe preference order of SPEC §4."""

    CUSTOMER = "customer"
    PARTNER = "partner"
    IMPLEMENTATION_PARTNER = "implementation_partner"


class Source(StrEnum):
    """Declaration order is the "source order as listed" of SPEC §4 (a dedupe tie-breaker)."""

    MYPAGE_CONTRACT_MANAGER = "mypage_contract_manager"
    MYPAGE_BILLING = "mypage_billing"
    LEGACY_ADMIN = "legacy_admin"
    SYSTEM_ADMIN = "system_admin"
    PARTNER_CONTACT = "partner_contact"
    CERTIFIED_IMPLEMENTER = "certified_implementer"


class Decision(StrEnum):
    SEND = "send"
    MERGED = "merged"
    SKIP = "skip"


class DedupeMode(StrEnum):
    ADDRESS = "address"
    ADDRESS_PER_ACCOUNT = "address_per_account"


class Reason(StrEnum):
    """Public reason codes; name = value because SQLAlchemy stores enum names."""

    # skip codes, in the order SPEC §4 lists them (the order of the `reasons` cell)
    RESELLER_CHANNEL = "RESELLER_CHANNEL"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    GROUP_ACCOUNT = "GROUP_ACCOUNT"
    USER_NOT_ACTIVE = "USER_NOT_ACTIVE"
    PARTNER_NOT_ACTIVE = "PARTNER_NOT_ACTIVE"
    CONTACT_NOT_ACTIVE = "CONTACT_NOT_ACTIVE"
    CERTIFICATION_EXPIRED = "CERTIFICATION_EXPIRED"
    MISSING_EMAIL = "MISSING_EMAIL"
    INVALID_EMAIL = "INVALID_EMAIL"
    SUPPRESSED = "SUPPRESSED"
    ALREADY_SENT = "ALREADY_SENT"
    # include codes
    MYPAGE_CONTACT = "MYPAGE_CONTACT"
    SYSTEM_ADMIN = "SYSTEM_ADMIN"
    LEGACY_ADMIN = "LEGACY_ADMIN"
    PARTNER_CONTACT = "PARTNER_CONTACT"
    CERTIFIED_IMPLEMENTER = "CERTIFIED_IMPLEMENTER"
    # dedupe
    DUPLICATE_ADDRESS = "DUPLICATE_ADDRESS"


REASON_SEPARATOR = ";"  # §5: the `reasons` cell is the codes joined with ";"


def join_reasons(codes: Iterable[Reason]) -> str:
    """The `reasons` cell of SPEC §5 (audit CSV and ledger column alike)."""
    return REASON_SEPARATOR.join(code.value for code in codes)


def split_reasons(text: str) -> tuple[Reason, ...]:
    """The codes of a `reasons` cell, in their order."""
    return tuple(Reason(code) for code in text.split(REASON_SEPARATOR) if code)


class DeliveryStatus(StrEnum):
    """A delivery's state; all but `sending` are the status words of SPEC §5 (audit `status`)."""

    PENDING = "pending"
    SENDING = "sending"  # claimed by a sender, not yet confirmed by the server
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    # §10: the relay accepted it, then a delivery status notification (5.x.x) came back
    BOUNCED = "bounced"


class WarningCode(StrEnum):
    EMAIL_NORMALIZED = "EMAIL_NORMALIZED"
    UNREACHABLE_CUSTOMER = "UNREACHABLE_CUSTOMER"
    ADMIN_AFTER_CUTOFF = "ADMIN_AFTER_CUTOFF"
    HEADER_SANITIZED = "HEADER_SANITIZED"


class ExclusionFilter(StrEnum):
    """Why a candidate is outside a campaign (not an audit row; `explain` shows it)."""

    AUDIENCES = "audiences"
    PLANS = "plans"
    PRODUCTS = "products"


class AccountKind(StrEnum):
    CUSTOMER = "customer"
    PARTNER = "partner"


# --- source values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    corp_id: str
    company_name: str  # My Page company name; company_info_* is never used for mail (§2)
    channel: Channel
    reseller_partner_id: str | None
    plan: Plan
    contract_status: ContractStatus
    applied_on: date | None
    is_oem: bool
    postal_code: str
    address: str


@dataclass(frozen=True, slots=True)
class MyPageContact:
    role: MyPageRole
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    email: str
    is_system_admin: bool
    account_type: AccountType
    status: UserStatus


@dataclass(frozen=True, slots=True)
class CustomerAccount:
    """One customer with everything the policy needs about it, loaded together."""

    customer: Customer
    contacts: tuple[MyPageContact, ...] = ()
    users: tuple[User, ...] = ()
    active_products: frozenset[Product] = frozenset()


@dataclass(frozen=True, slots=True)
class Partner:
    partner_id: str
    name: str
    kind: PartnerKind
    status: PartnerStatus
    postal_code: str
    address: str


@dataclass(frozen=True, slots=True)
class PartnerContact:
    contact_id: str
    name: str
    email: str
    role: ContactRole
    certified_until: date | None
    status: ContactStatus


@dataclass(frozen=True, slots=True)
class PartnerAccount:
    partner: Partner
    contacts: tuple[PartnerContact, ...] = ()


# --- resolution values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Normalized:
    """The outcome of normalizing one source address (SPEC §4 "Normalization").

    `address` is None when the address is missing or invalid; `error` then says why in words.
    `key` is the dedupe key: the whole normalized address, lower-cased.
    """

    original: str
    address: str | None
    key: str | None
    missing: bool = False
    error: str | None = None
    changed: bool = False  # NFKC changed the text: warning EMAIL_NORMALIZED


@dataclass(frozen=True, slots=True)
class Candidate:
    """One person who may be entitled to a campaign, with the facts the rules look at."""

    audience: Audience
    source: Source
    account_id: str
    account_name: str
    person_id: str  # user_id or contact_id; "" for My Page contacts
    name: str  # control characters already removed (HEADER_SANITIZED)
    email: str  # as in the source data
    normalized: Normalized
    customer: Customer | None = None
    user: User | None = None
    partner: Partner | None = None
    contact: PartnerContact | None = None
    name_sanitized: bool = False

    @property
    def account_kind(self) -> AccountKind:
        return AccountKind.CUSTOMER if self.customer is not None else AccountKind.PARTNER


@dataclass(frozen=True, slots=True)
class Decided:
    """A candidate's decision: one audit row."""

    candidate: Candidate
    decision: Decision
    reasons: tuple[Reason, ...]
    delivery_key: str | None = None  # the dedupe group, for send and merged rows
    delivery_email: str | None = None
    skip_reasons: tuple[Reason, ...] = field(default=())


class AuditRow(NamedTuple):
    """One audit row as plain values: what the resolution decides of the SPEC §5 columns.

    A tuple, not an object per row: a run of a million customers streams three million of them
    into the audit CSV or the ledger. `Decided.candidate` holds the rest for `explain`.
    """

    decision: Decision
    reasons: tuple[Reason, ...]
    audience: Audience
    account_id: str
    account_name: str
    source: Source
    person_id: str
    name: str
    email: str  # as in the source data
    delivery_email: str | None  # send and merged rows
    delivery_key: str | None  # the dedupe group (the Message-ID's input), send and merged rows


@dataclass(frozen=True, slots=True)
class Excluded:
    """A candidate outside the campaign's filters: never an audit row."""

    candidate: Candidate
    filter: ExclusionFilter
    detail: str


@dataclass(frozen=True, slots=True)
class AccountRef:
    """One account a delivery covers, as templates see it (`recipient.accounts`)."""

    kind: AccountKind
    id: str
    name: str
    roles: tuple[Source, ...]
    postal_code: str
    address: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one address: the `send` row plus every row merged into it."""

    key: str  # dedupe group: lower-cased address, with "|account_id" under address_per_account
    email: str  # the normalized delivery address (of the send row)
    name: str  # the send row's person name
    audience: Audience
    reasons: tuple[Reason, ...]  # distinct include codes of the group, send row first
    accounts: tuple[AccountRef, ...]
    seq: int  # 1-based position in resolution order (messages/<seq>.eml)


@dataclass(frozen=True, slots=True)
class Warning:
    code: WarningCode
    account_id: str
    person_id: str
    email: str
    detail: str


@dataclass(frozen=True, slots=True)
class CampaignPolicy:
    """The parts of a campaign file that decide who is in it (SPEC §8 campaign file)."""

    audiences: frozenset[Audience] = frozenset(Audience)
    dedupe: DedupeMode = DedupeMode.ADDRESS
    plans: frozenset[Plan] | None = None  # None: no filter
    products: frozenset[Product] | None = None  # None: no filter
