"""Streaming reads of the source tables into resolver values (SPEC §3 → `resolver.model`).

Accounts are read in keyset pages: a page of N customers (`corp_id > last ORDER BY corp_id`),
then the contacts, users and active contracts of exactly that page, merged in Python. Memory
is bounded by the page size, and no query stays open while another runs, which is what makes
it work alike on SQLite, on psycopg (server-side cursors need their own transaction) and on
PyMySQL (an unbuffered cursor blocks its connection until drained).

The resolver compares ids with Python `str` order, so accounts come out in code-point order of
their id; the schema's binary collations (`jobs.source.engine.id_type`) make the database agree,
and a source whose collation disagrees (a replica's own views) is refused rather than mis-merged.
Text columns that are NULL in the database arrive as "" so that the resolver sees plain `str`.

The resolution's own read (`iter_customer_rows`) takes the same pages with plain SQL on the
driver's cursor and hands the rows on as tuples (`resolver.fast.CustomerRows`): at a million
customers, building SQLAlchemy rows and then resolver values of every row cost more than the
database's reading of them. `RawQueries` is that SQL, shared with `bench/resolve.py`, whose scan
is the yardstick of issue 10.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

import sqlalchemy as sa

from jobs.errors import ConfigError
from jobs.i18n import tr
from jobs.source.models import (
    Contract,
    Customer,
    MyPageContact,
    Partner,
    PartnerContact,
    Suppression,
    User,
)
from resolver import model
from resolver.candidates import LEGACY_ADMIN_ID
from resolver.fast import CUSTOMER_COLUMNS, MYPAGE_COLUMNS, USER_COLUMNS, CustomerRows
from resolver.model import (
    CustomerAccount,
    MyPageRole,
    PartnerAccount,
    Product,
    ProductStatus,
)
from resolver.normalize import dedupe_key

__all__ = [
    "PAGE_SIZE",
    "RawQueries",
    "chunk_starts",
    "find_accounts_by_email",
    "iter_customer_accounts",
    "iter_customer_rows",
    "iter_partner_accounts",
    "load_suppression_keys",
]

PAGE_SIZE = 1_000
"""Accounts per page; also bounds the number of bound parameters of an id filter."""

_SCAN_BATCH = 5_000
_PARENT = itemgetter(0)
_ROLE_ORDER = {role: i for i, role in enumerate(MyPageRole)}  # §2: contract manager, then billing

T = TypeVar("T")

_customers = Customer.__table__
_mypage = MyPageContact.__table__
_users = User.__table__
_contracts = Contract.__table__
_partners = Partner.__table__
_partner_contacts = PartnerContact.__table__


def _text(value: str | None) -> str:
    return value if value is not None else ""


def _pages(
    conn: sa.Connection,
    key: sa.ColumnElement[str],
    columns: Sequence[sa.ColumnElement[Any]],
    ids: Collection[str] | None,
    page_size: int,
) -> Iterator[list[sa.Row[Any]]]:
    """Pages of parent rows in ascending `key`: keyset-paged, or the requested ids in chunks."""
    base = sa.select(*columns).order_by(key)
    if ids is not None:
        wanted = sorted(set(ids))
        for start in range(0, len(wanted), page_size):
            chunk = wanted[start : start + page_size]
            rows = list(conn.execute(base.where(key.in_(chunk))))
            if rows:
                yield rows
        return
    last: str | None = None
    while True:
        stmt = base.limit(page_size) if last is None else base.where(key > last).limit(page_size)
        rows = list(conn.execute(stmt))
        if not rows:
            return
        yield rows
        last = rows[-1][0]
        if len(rows) < page_size:
            return


def _check_order(ids: Sequence[str], previous: str | None, table: str) -> str | None:
    for current in ids:
        if previous is not None and not previous < current:
            raise ConfigError(
                tr(
                    "the source database returns {table} ids out of code-point order "
                    "({previous!r} before {current!r}); give the id columns a binary collation "
                    '(PostgreSQL COLLATE "C", MariaDB utf8mb4_bin)',
                    table=table,
                    previous=previous,
                    current=current,
                )
            )
        previous = current
    return previous


def _children(
    conn: sa.Connection,
    stmt: sa.Select[Any],
    key: sa.ColumnElement[str],
    page_ids: Sequence[str],
    build: Callable[[sa.Row[Any]], T],
    *,
    contiguous: bool,
) -> dict[str, list[T]]:
    """The child rows of exactly the parents of one page, grouped by parent id."""
    # A keyset page holds every parent between its first and last id: one index range.
    condition = key.between(page_ids[0], page_ids[-1]) if contiguous else key.in_(page_ids)
    wanted = set(page_ids)
    grouped: dict[str, list[T]] = defaultdict(list)
    for row in conn.execute(stmt.where(condition)):
        parent = row[0]
        if parent in wanted:
            grouped[parent].append(build(row))
    return grouped


def _customer(row: sa.Row[Any]) -> model.Customer:
    return model.Customer(
        corp_id=row.corp_id,
        company_name=_text(row.company_name),
        channel=row.channel,
        reseller_partner_id=row.reseller_partner_id or None,
        plan=row.plan,
        contract_status=row.contract_status,
        applied_on=row.applied_on,
        is_oem=bool(row.is_oem),
        # §2: My Page 会社基本設定 only; company_info_* is never read for mailing.
        postal_code=_text(row.mypage_postal_code),
        address=_text(row.mypage_address),
    )


def _mypage_contact(row: sa.Row[Any]) -> model.MyPageContact:
    return model.MyPageContact(role=row.role, name=_text(row.name), email=_text(row.email))


def _user(row: sa.Row[Any]) -> model.User:
    return model.User(
        user_id=row.user_id,
        name=_text(row.name),
        email=_text(row.email),
        is_system_admin=bool(row.is_system_admin),
        account_type=row.account_type,
        status=row.status,
    )


def _product(row: sa.Row[Any]) -> Product:
    product: Product = row.product
    return product


def iter_customer_accounts(
    conn: sa.Connection,
    corp_ids: Collection[str] | None = None,
    *,
    page_size: int = PAGE_SIZE,
) -> Iterator[CustomerAccount]:
    """Each customer (or those of `corp_ids`) with contacts, users, active products; by corp_id."""
    c = _customers.c
    columns = [
        c.corp_id,
        c.company_name,
        c.channel,
        c.reseller_partner_id,
        c.plan,
        c.contract_status,
        c.applied_on,
        c.is_oem,
        c.mypage_postal_code,
        c.mypage_address,
    ]
    contacts_stmt = sa.select(
        _mypage.c.corp_id, _mypage.c.role, _mypage.c.name, _mypage.c.email
    ).order_by(_mypage.c.corp_id)
    users_stmt = sa.select(
        _users.c.corp_id,
        _users.c.user_id,
        _users.c.name,
        _users.c.email,
        _users.c.is_system_admin,
        _users.c.account_type,
        _users.c.status,
    ).order_by(_users.c.corp_id, _users.c.user_id)
    products_stmt = (
        sa.select(_contracts.c.corp_id, _contracts.c.product)
        .where(_contracts.c.status == ProductStatus.ACTIVE)  # §4 products filter: active only
        .order_by(_contracts.c.corp_id, _contracts.c.product)
    )
    contiguous = corp_ids is None
    previous: str | None = None
    for page in _pages(conn, c.corp_id, columns, corp_ids, page_size):
        ids = [row.corp_id for row in page]
        previous = _check_order(ids, previous, "customers")
        contacts = _children(
            conn, contacts_stmt, _mypage.c.corp_id, ids, _mypage_contact, contiguous=contiguous
        )
        users = _children(conn, users_stmt, _users.c.corp_id, ids, _user, contiguous=contiguous)
        products = _children(
            conn, products_stmt, _contracts.c.corp_id, ids, _product, contiguous=contiguous
        )
        for row in page:
            corp_id = row.corp_id
            yield CustomerAccount(
                customer=_customer(row),
                contacts=tuple(
                    sorted(contacts.get(corp_id, ()), key=lambda m: _ROLE_ORDER[m.role])
                ),
                # Sorted again in Python: the database's order of user_id is its collation's.
                users=tuple(sorted(users.get(corp_id, ()), key=lambda u: u.user_id)),
                active_products=frozenset(products.get(corp_id, ())),
            )


class RawQueries:
    """The resolution's reads as plain SQL in the driver's paramstyle (keyset pages)."""

    def __init__(self, paramstyle: str) -> None:
        mark = "?" if paramstyle == "qmark" else "%s"
        between = f"BETWEEN {mark} AND {mark}"
        customers = ", ".join(_customers.c[name].name for name in CUSTOMER_COLUMNS)
        self._mark = mark
        self._customers = f"SELECT {customers} FROM {Customer.__tablename__}"
        mypage = ", ".join(_mypage.c[name].name for name in MYPAGE_COLUMNS)
        users = ", ".join(_users.c[name].name for name in USER_COLUMNS)
        in_page = f"WHERE corp_id {between} ORDER BY corp_id"
        self.mypage = f"SELECT {mypage} FROM {MyPageContact.__tablename__} {in_page}"
        # Every user of the page (the benchmark's scan reads these), and the resolution's own
        # read: only users that can be candidates (§4: a System Administrator, or `admin` in
        # any case). The filter is a superset, decided exactly again by `resolver.fast`: a
        # database `lower()` may also fold a non-ASCII letter, never miss an ASCII one. Two
        # thirds of a customer's users are neither, and not reading them is the largest single
        # cut of `resolve`'s time (issue 10).
        self.users = f"SELECT {users} FROM {User.__tablename__} {in_page}, user_id"
        self.candidate_users = (
            f"SELECT {users} FROM {User.__tablename__} WHERE corp_id {between}"
            f" AND (is_system_admin = TRUE OR lower(user_id) = '{LEGACY_ADMIN_ID}')"
            " ORDER BY corp_id, user_id"
        )
        # §4 products filter: active contracts only.
        self.contracts = (
            f"SELECT corp_id, product FROM {Contract.__tablename__}"
            f" WHERE status = {mark} AND corp_id {between} ORDER BY corp_id, product"
        )
        self.active = ProductStatus.ACTIVE.value

    def customer_page(self, *, after: str | None, stop: bool, limit: int) -> str:
        """One page of customers by corp_id, `limit` at most.

        `after`: None for the very first page, ">" (corp_id > the last id read) for the next
        ones, ">=" for a chunk's first page (corp_id >= its start); `stop`: the page also ends
        before a chunk's stop (corp_id < it). The parameters come in that order.
        """
        conditions = [f"corp_id {after} {self._mark}"] if after else []
        if stop:
            conditions.append(f"corp_id < {self._mark}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"{self._customers}{where} ORDER BY corp_id LIMIT {int(limit)}"


def _grouped(cursor: Any, sql: str, params: tuple[Any, ...]) -> dict[str, list[tuple[Any, ...]]]:
    # Rows come ordered by their parent id: grouped in C, one list per parent.
    cursor.execute(sql, params)
    return {parent: list(rows) for parent, rows in groupby(cursor.fetchall(), _PARENT)}


def chunk_starts(conn: sa.Connection, every: int) -> list[str]:
    """The corp_id of every `every`-th customer from the first: a parallel resolution's chunks."""
    corp_id = _customers.c.corp_id
    numbered = sa.select(corp_id, sa.func.row_number().over(order_by=corp_id).label("n")).subquery(
        "numbered"
    )
    stmt = (
        sa.select(numbered.c.corp_id)
        .where((numbered.c.n - 1) % every == 0)
        .order_by(numbered.c.corp_id)
    )
    starts = [row[0] for row in conn.execute(stmt)]
    _check_order(starts, None, "customers")
    return starts


def iter_customer_rows(
    conn: sa.Connection,
    *,
    page_size: int = PAGE_SIZE,
    products: bool = True,
    chunk: tuple[str, str | None] | None = None,
) -> Iterator[CustomerRows]:
    """Every customer's rows by corp_id, read on the driver's cursor of `conn`'s transaction.

    Only the users that can be candidates are read (`RawQueries.candidate_users`): the rows
    serve a resolution, not `explain`, which lists the others. `products=False`: the campaign
    has no products filter, so the contracts are not read and every `products` set is empty.
    `chunk=(start, stop)`: only the customers with start <= corp_id < stop (None: to the end).
    """
    sql = RawQueries(conn.dialect.paramstyle)
    start, stop = (None, None) if chunk is None else chunk
    bounds = () if stop is None else (stop,)  # every page of a chunk ends before its stop
    first = sql.customer_page(
        after=None if start is None else ">=", stop=bool(bounds), limit=page_size
    )
    first_params = bounds if start is None else (start, *bounds)
    following = sql.customer_page(after=">", stop=bool(bounds), limit=page_size)
    make = tuple.__new__  # CustomerRows._make runs Python code for each of a million customers
    none: list[tuple[Any, ...]] = []
    empty: frozenset[str] = frozenset()
    raw: Any = conn.connection.driver_connection
    cursor = raw.cursor()
    try:
        cursor.execute(first, first_params)
        previous: str | None = None
        while page := cursor.fetchall():
            ids = [row[0] for row in page]
            previous = _check_order(ids, previous, "customers")
            span = (ids[0], ids[-1])
            contacts = _grouped(cursor, sql.mypage, span)
            users = _grouped(cursor, sql.candidate_users, span)
            found = _grouped(cursor, sql.contracts, (sql.active, *span)) if products else {}
            for row in page:
                corp_id = row[0]
                yield make(
                    CustomerRows,
                    (
                        row,
                        contacts.get(corp_id, none),
                        users.get(corp_id, none),
                        frozenset([p for _, p in found[corp_id]]) if corp_id in found else empty,
                    ),
                )
            if len(page) < page_size:
                return
            cursor.execute(following, (ids[-1], *bounds))
    finally:
        cursor.close()


def _partner(row: sa.Row[Any]) -> model.Partner:
    return model.Partner(
        partner_id=row.partner_id,
        name=_text(row.name),
        kind=row.kind,
        status=row.status,
        postal_code=_text(row.postal_code),
        address=_text(row.address),
    )


def _partner_contact(row: sa.Row[Any]) -> model.PartnerContact:
    return model.PartnerContact(
        contact_id=row.contact_id,
        name=_text(row.name),
        email=_text(row.email),
        role=row.role,
        certified_until=row.certified_until,
        status=row.status,
    )


def iter_partner_accounts(
    conn: sa.Connection,
    partner_ids: Collection[str] | None = None,
    *,
    page_size: int = PAGE_SIZE,
) -> Iterator[PartnerAccount]:
    """Every partner (or those of `partner_ids`) with its contacts, ordered by partner_id."""
    p = _partners.c
    columns = [p.partner_id, p.name, p.kind, p.status, p.postal_code, p.address]
    pc = _partner_contacts.c
    contacts_stmt = sa.select(
        pc.partner_id, pc.contact_id, pc.name, pc.email, pc.role, pc.certified_until, pc.status
    ).order_by(pc.partner_id, pc.contact_id)
    previous: str | None = None
    for page in _pages(conn, p.partner_id, columns, partner_ids, page_size):
        ids = [row.partner_id for row in page]
        previous = _check_order(ids, previous, "partners")
        contacts = _children(
            conn,
            contacts_stmt,
            pc.partner_id,
            ids,
            _partner_contact,
            contiguous=partner_ids is None,
        )
        for row in page:
            yield PartnerAccount(
                partner=_partner(row),
                contacts=tuple(
                    sorted(contacts.get(row.partner_id, ()), key=lambda k: k.contact_id)
                ),
            )


def load_suppression_keys(conn: sa.Connection) -> set[str]:
    """The dedupe keys of the source suppression list (SPEC §4 SUPPRESSED)."""
    keys: set[str] = set()
    stmt = sa.select(Suppression.__table__.c.email).execution_options(yield_per=_SCAN_BATCH)
    for (email,) in conn.execute(stmt):
        # Imported rows hold the key already; re-deriving it (idempotent) also covers a
        # replica whose suppression view holds addresses as typed.
        key = dedupe_key(email or "")
        if key is not None:
            keys.add(key)
    return keys


def find_accounts_by_email(
    conn: sa.Connection, email: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(corp_ids, partner_ids) whose contacts or users have `email`, by dedupe key (`explain`)."""
    target = dedupe_key(email)
    if target is None:
        return (), ()
    corp_ids: set[str] = set()
    partner_ids: set[str] = set()
    scans = (
        (sa.select(_mypage.c.corp_id, _mypage.c.email), corp_ids),
        (sa.select(_users.c.corp_id, _users.c.email), corp_ids),
        (sa.select(_partner_contacts.c.partner_id, _partner_contacts.c.email), partner_ids),
    )
    for stmt, found in scans:
        for account_id, raw in conn.execute(stmt.execution_options(yield_per=_SCAN_BATCH)):
            if raw and account_id not in found and dedupe_key(raw) == target:
                found.add(account_id)
    return tuple(sorted(corp_ids)), tuple(sorted(partner_ids))
