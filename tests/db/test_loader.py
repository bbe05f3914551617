"""The loader: every account, complete, in code-point order of its id, on every database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.errors import ConfigError
from jobs.source.engine import make_engine, snapshot
from jobs.source.importer import import_dir
from jobs.source.loader import (
    find_accounts_by_email,
    iter_customer_accounts,
    iter_partner_accounts,
    load_suppression_keys,
)
from jobs.source.models import Customer, MyPageContact, init_source_schema
from resolver.model import Product
from tests.db.csvdata import (
    Table,
    copy_sample,
    expected_customers,
    expected_partners,
    read_table,
    write_synthetic,
    write_table,
)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sample_engine(engine: sa.Engine, sample_data: Path) -> sa.Engine:
    import_dir(engine, sample_data)
    return engine


@pytest.mark.parametrize("page_size", [1000, 7])
def test_customer_accounts_are_complete_and_in_corp_id_order(
    engine: sa.Engine, sample_data: Path, tmp_path: Path, page_size: int
) -> None:
    # The sample plus customers with no contacts, users or contracts, first, middle and last.
    folder = copy_sample(sample_data, tmp_path / "lonely")
    customers = read_table(folder, "customers")
    for corp_id in ("C000000000", "C0700000425", "Z999"):
        row = list(customers.rows[0])
        row[customers.col("corp_id")] = corp_id
        customers.rows.append(row)
    write_table(folder, "customers", customers)
    import_dir(engine, folder)
    with snapshot(engine) as conn:
        loaded = list(iter_customer_accounts(conn, page_size=page_size))
    assert loaded == expected_customers(folder)
    assert len(loaded) == 91
    lonely = [a for a in loaded if a.customer.corp_id in ("C000000000", "C0700000425", "Z999")]
    assert [(a.contacts, a.users, a.active_products) for a in lonely] == [((), (), frozenset())] * 3


def test_only_active_contracts_become_products(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    folder = copy_sample(sample_data, tmp_path / "ended")
    contracts = read_table(folder, "contracts")
    contracts.rows = [r for r in contracts.rows if r[0] != "C070000009"]
    contracts.rows += [
        ["C070000009", "sales", "terminated"],
        ["C070000009", "payroll", "active"],
        ["C070000001", "accounting", "terminated"],
    ]
    write_table(folder, "contracts", contracts)
    import_dir(engine, folder)
    with snapshot(engine) as conn:
        both = {
            a.customer.corp_id: a
            for a in iter_customer_accounts(conn, ["C070000009", "C070000001"])
        }
    assert both["C070000009"].active_products == {Product.PAYROLL}
    assert both["C070000001"].active_products == frozenset()


def test_requested_corp_ids_only_in_order(sample_engine: sa.Engine) -> None:
    wanted = ["C070000009", "C070000001", "C070000001", "NO-SUCH-ID", "C070000042"]
    with snapshot(sample_engine) as conn:
        loaded = list(iter_customer_accounts(conn, wanted, page_size=2))
        none = list(iter_customer_accounts(conn, []))
    assert [a.customer.corp_id for a in loaded] == ["C070000001", "C070000009", "C070000042"]
    assert none == []
    assert loaded[0].contacts and loaded[0].users


def test_partner_accounts_are_complete(sample_engine: sa.Engine, sample_data: Path) -> None:
    with snapshot(sample_engine) as conn:
        loaded = list(iter_partner_accounts(conn, page_size=3))
        one = list(iter_partner_accounts(conn, ["P0700005"]))
    assert loaded == expected_partners(sample_data)
    assert [p.partner.partner_id for p in one] == ["P0700005"]
    assert [c.contact_id for c in one[0].contacts] == ["K07000003", "K07000004"]


def test_ids_sort_case_sensitively_in_code_point_order(engine: sa.Engine, tmp_path: Path) -> None:
    # MariaDB's default collation would fold "abc"/"ABC" into one key and sort "é" with "e".
    ids = ["abc", "ABC", "Abc", "b", "B", "e", "é", "f", "あ", "ア", "😀", "a-1", "a_1", "a1", "z"]
    folder = tmp_path / "ids"
    folder.mkdir()
    header = [c.name for c in Customer.__table__.columns]
    write_table(
        folder,
        "customers",
        Table(
            header,
            [[i, f"社{i}", "direct", "", "paid", "active", "", "0", "", "", "", ""] for i in ids],
        ),
    )
    write_table(
        folder,
        "users",
        Table(
            ["corp_id", "user_id", "name", "email", "is_system_admin", "account_type", "status"],
            [
                ["abc", u, "", "", "1", "normal", "active"]
                for u in ("admin", "Admin", "ADMIN", "ádmin")
            ],
        ),
    )
    import_dir(engine, folder)
    with snapshot(engine) as conn:
        for page_size in (1000, 2):
            loaded = list(iter_customer_accounts(conn, page_size=page_size))
            assert [a.customer.corp_id for a in loaded] == sorted(ids)
        (abc,) = iter_customer_accounts(conn, ["abc"])
    assert [u.user_id for u in abc.users] == ["ADMIN", "Admin", "admin", "ádmin"]
    assert abc.customer.company_name == "社abc"
    assert abc.customer.postal_code == ""  # NULL-ish text arrives as ""


def test_null_text_columns_arrive_as_empty_strings(engine: sa.Engine) -> None:
    init_source_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Customer.__table__),
            {"corp_id": "C1", "channel": "direct", "plan": "free", "contract_status": "active",
             "is_oem": False},
        )  # fmt: skip
        conn.execute(sa.insert(MyPageContact.__table__), {"corp_id": "C1", "role": "billing"})
    with snapshot(engine) as conn:
        (account,) = iter_customer_accounts(conn)
    assert account.customer.company_name == ""
    assert account.customer.address == ""
    assert (account.contacts[0].name, account.contacts[0].email) == ("", "")


def test_suppression_keys(engine: sa.Engine, sample_data: Path, tmp_path: Path) -> None:
    folder = copy_sample(sample_data, tmp_path / "supp")
    write_table(
        folder,
        "suppressions",
        Table(
            ["email", "reason", "created_on"],
            [
                ["Taro@Example.JP", "hard_bounce", "2026-01-01"],
                ["ｈａｎａ@example.jp", "manual", ""],
            ],
        ),
    )
    import_dir(engine, folder)
    with snapshot(engine) as conn:
        assert load_suppression_keys(conn) == {"taro@example.jp", "hana@example.jp"}


def test_find_accounts_by_email(sample_engine: sa.Engine) -> None:
    with snapshot(sample_engine) as conn:
        # a My Page contact, spelled full-width and upper-case
        assert find_accounts_by_email(conn, " ＭＡＫＯＴＯ.saito.c070000001@EXAMPLE.co.jp") == (
            ("C070000001",),
            (),
        )
        # a user
        assert find_accounts_by_email(conn, "mayumi.kato.tanaka01.c070000001@example.jp") == (
            ("C070000001",),
            (),
        )
        # a partner contact
        assert find_accounts_by_email(conn, "taro.nakamura.k3@mail.example.ne.jp") == (
            (),
            ("P0700005",),
        )
        assert find_accounts_by_email(conn, "nobody@example.jp") == ((), ())
        assert find_accounts_by_email(conn, "") == ((), ())


def test_many_pages_of_a_synthetic_set(engine: sa.Engine, tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "synthetic", customers=250, seed=7)
    import_dir(engine, folder)
    with snapshot(engine) as conn:
        loaded = list(iter_customer_accounts(conn, page_size=40))
    assert loaded == expected_customers(folder)


def test_source_in_another_order_is_refused(tmp_path: Path) -> None:
    # A replica's view may sort ids by a linguistic collation: refuse rather than mis-merge.
    engine = make_engine(f"sqlite:///{tmp_path / 'nocase.sqlite3'}")
    try:
        init_source_schema(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE customers")
            conn.exec_driver_sql(
                "CREATE TABLE customers (corp_id VARCHAR(64) COLLATE NOCASE PRIMARY KEY,"
                " company_name VARCHAR(255), channel VARCHAR(32), reseller_partner_id VARCHAR(64),"
                " plan VARCHAR(32), contract_status VARCHAR(32), applied_on DATE, is_oem BOOLEAN,"
                " mypage_postal_code VARCHAR(32), mypage_address VARCHAR(512),"
                " company_info_name VARCHAR(255), company_info_address VARCHAR(512))"
            )
            for corp_id in ("a", "B"):
                conn.exec_driver_sql(
                    "INSERT INTO customers (corp_id, channel, plan, contract_status, is_oem)"
                    " VALUES (?, 'direct', 'paid', 'active', 0)",
                    (corp_id,),
                )
        with snapshot(engine) as conn, pytest.raises(ConfigError, match="code-point order"):
            list(iter_customer_accounts(conn))
    finally:
        engine.dispose()
