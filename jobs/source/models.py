"""The source data tables of SPEC §3, one per CSV file, named after it.

These tables are what `db import` fills and what the loader reads. They may also be views of the
production database on a read-only replica (SPEC §8 `database.url`), so the loader relies only
on the columns and keys declared here. Enumerations are stored by their public VALUE (the CSV
spelling), as plain strings, so that a replica's views need no native enum types.
"""

from __future__ import annotations

import enum
from datetime import date
from typing import Annotated

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobs.errors import ConfigError
from jobs.source.engine import id_type, shown_url
from resolver.model import (
    AccountType,
    Channel,
    ContactRole,
    ContactStatus,
    ContractStatus,
    MyPageRole,
    PartnerKind,
    PartnerStatus,
    Plan,
    Product,
    ProductStatus,
    SuppressionReason,
    UserStatus,
)

__all__ = [
    "Contract",
    "Customer",
    "MyPageContact",
    "Partner",
    "PartnerContact",
    "SourceBase",
    "Suppression",
    "User",
    "check_source_schema",
    "init_source_schema",
    "source_tables",
]

ENUM_LENGTH = 32
EMAIL_LENGTH = 320  # RFC 3696 errata: 64 + 1 + 255

# Annotated aliases: each kind of column is declared once (type_annotation_map below).
IdStr = Annotated[str, "id"]
EmailKey = Annotated[str, "email_key"]
Email = Annotated[str, "email"]
Name = Annotated[str, "name"]
Address = Annotated[str, "address"]
PostalCode = Annotated[str, "postal_code"]


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_class]


class SourceBase(DeclarativeBase):
    """Declarative base of the source tables (the ledger has its own metadata)."""

    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        IdStr: id_type(64),
        # The suppression key is compared exactly, like an id (MariaDB would fold accents).
        EmailKey: id_type(EMAIL_LENGTH),
        Email: sa.String(EMAIL_LENGTH),
        Name: sa.String(255),
        Address: sa.String(512),
        PostalCode: sa.String(32),
        # §3: enumerations are lower-case and exact; stored by value, as VARCHAR everywhere.
        enum.Enum: sa.Enum(
            enum.Enum,
            native_enum=False,
            values_callable=_enum_values,
            length=ENUM_LENGTH,
            validate_strings=True,
        ),
    }


_UTF8MB4 = {"mysql_charset": "utf8mb4"}


class Partner(SourceBase):
    __tablename__ = "partners"
    __table_args__ = (_UTF8MB4,)

    partner_id: Mapped[IdStr] = mapped_column(primary_key=True)
    name: Mapped[Name | None]
    kind: Mapped[PartnerKind]
    status: Mapped[PartnerStatus]
    postal_code: Mapped[PostalCode | None]
    address: Mapped[Address | None]


class Customer(SourceBase):
    __tablename__ = "customers"
    __table_args__ = (_UTF8MB4,)

    corp_id: Mapped[IdStr] = mapped_column(primary_key=True)
    company_name: Mapped[Name | None]  # My Page 会社基本設定: the only name used for mail (§2)
    channel: Mapped[Channel]
    reseller_partner_id: Mapped[IdStr | None] = mapped_column(
        sa.ForeignKey("partners.partner_id"), index=True
    )
    plan: Mapped[Plan]
    contract_status: Mapped[ContractStatus]
    applied_on: Mapped[date | None]
    is_oem: Mapped[bool]
    mypage_postal_code: Mapped[PostalCode | None]
    mypage_address: Mapped[Address | None]
    # 設定 > 共通設定 > 会社情報: imported for completeness, never read for mailing (§2).
    company_info_name: Mapped[Name | None]
    company_info_address: Mapped[Address | None]


class MyPageContact(SourceBase):
    __tablename__ = "mypage_contacts"
    __table_args__ = (_UTF8MB4,)

    corp_id: Mapped[IdStr] = mapped_column(sa.ForeignKey("customers.corp_id"), primary_key=True)
    role: Mapped[MyPageRole] = mapped_column(primary_key=True)
    name: Mapped[Name | None]
    email: Mapped[Email | None]


class User(SourceBase):
    __tablename__ = "users"
    __table_args__ = (_UTF8MB4,)

    corp_id: Mapped[IdStr] = mapped_column(sa.ForeignKey("customers.corp_id"), primary_key=True)
    user_id: Mapped[IdStr] = mapped_column(primary_key=True)
    name: Mapped[Name | None]
    email: Mapped[Email | None]
    is_system_admin: Mapped[bool]
    account_type: Mapped[AccountType]
    status: Mapped[UserStatus]


class PartnerContact(SourceBase):
    __tablename__ = "partner_contacts"
    __table_args__ = (
        # The loader reads a page of partners' contacts ordered by (partner_id, contact_id).
        sa.Index("ix_partner_contacts_partner", "partner_id", "contact_id"),
        _UTF8MB4,
    )

    partner_id: Mapped[IdStr] = mapped_column(sa.ForeignKey("partners.partner_id"))
    contact_id: Mapped[IdStr] = mapped_column(primary_key=True)
    name: Mapped[Name | None]
    email: Mapped[Email | None]
    role: Mapped[ContactRole]
    certified_until: Mapped[date | None]
    status: Mapped[ContactStatus]


class Contract(SourceBase):
    __tablename__ = "contracts"
    __table_args__ = (_UTF8MB4,)

    corp_id: Mapped[IdStr] = mapped_column(sa.ForeignKey("customers.corp_id"), primary_key=True)
    product: Mapped[Product] = mapped_column(primary_key=True)
    status: Mapped[ProductStatus]


class Suppression(SourceBase):
    __tablename__ = "suppressions"
    __table_args__ = (_UTF8MB4,)

    # §3: keyed by the normalized address (resolver.normalize.dedupe_key), not the raw text.
    email: Mapped[EmailKey] = mapped_column(primary_key=True)
    reason: Mapped[SuppressionReason]
    created_on: Mapped[date | None]


def source_tables() -> tuple[sa.Table, ...]:
    """The source tables, parents before children (insert order; delete in reverse)."""
    return (
        Partner.__table__,
        Customer.__table__,
        MyPageContact.__table__,
        User.__table__,
        PartnerContact.__table__,
        Contract.__table__,
        Suppression.__table__,
    )  # type: ignore[return-value]  # __table__ is typed FromClause


def init_source_schema(engine: sa.Engine) -> None:
    """Create the source tables that do not exist yet (`db init`; safe to repeat)."""
    SourceBase.metadata.create_all(engine)


def check_source_schema(engine: sa.Engine) -> None:
    """Refuse to resolve against a database without the §3 tables (exit 2, not a traceback).

    Views count as tables: a read-only replica may expose §3 as views over its own tables (§8
    `database.url`), and the loader only ever SELECTs from them.
    """
    inspector = sa.inspect(engine)
    present = set(inspector.get_table_names()) | set(inspector.get_view_names())
    missing = [t.name for t in source_tables() if t.name not in present]
    if missing:
        shown = shown_url(engine)
        raise ConfigError(
            f"the source database {shown} has no table {', '.join(missing)}: run `swmail db init`"
            " and `swmail db import DIR` first (or point database.url at the SmileWorks data)"
        )
