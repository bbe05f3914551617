"""`db import` (SPEC §3): loads the CSV set, and rejects any bad row with file, line and column,
leaving the database exactly as it was — on SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.errors import InputError
from jobs.source.engine import make_engine
from jobs.source.importer import import_dir
from jobs.source.models import (
    Customer,
    PartnerContact,
    Suppression,
    User,
    init_source_schema,
)
from resolver.model import Channel, ContactRole
from tests.db.csvdata import (
    CSV_NAMES,
    Table,
    changed_sample,
    copy_sample,
    db_state,
    read_table,
    write_table,
)

SAMPLE_COUNTS = {
    "partners": 7,
    "customers": 88,
    "mypage_contacts": 137,
    "users": 259,
    "partner_contacts": 6,
    "contracts": 136,
    "suppressions": 0,
}


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_sample_data_imports_with_counts_and_values(engine: sa.Engine, sample_data: Path) -> None:
    report = import_dir(engine, sample_data)
    assert dict(report.counts) == SAMPLE_COUNTS
    assert report.absent == ()
    with engine.connect() as conn:
        customer = conn.execute(
            sa.select(Customer.__table__).where(Customer.__table__.c.corp_id == "C070000001")
        ).one()
        user = conn.execute(
            sa.select(User.__table__).where(
                User.__table__.c.corp_id == "C070000001", User.__table__.c.user_id == "tanaka01"
            )
        ).one()
        contact = conn.execute(
            sa.select(PartnerContact.__table__).where(
                PartnerContact.__table__.c.contact_id == "K07000003"
            )
        ).one()
    assert customer.company_name == "株式会社東西青空"
    assert customer.company_info_name == "株式会社東西青空 本社"
    assert customer.channel is Channel.DIRECT
    assert customer.reseller_partner_id is None
    assert customer.applied_on == date(2021, 4, 1)
    assert customer.is_oem is False
    assert user.name == "加藤 真由美"
    assert user.is_system_admin is True
    assert contact.role is ContactRole.CERTIFIED_IMPLEMENTER
    assert contact.certified_until == date(2026, 12, 31)


def test_reimport_replaces_the_data_set(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    import_dir(engine, sample_data)
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    customers = read_table(sample_data, "customers")
    customers.rows = [r for r in customers.rows if r[customers.col("reseller_partner_id")] == ""]
    customers.rows = customers.rows[:3]
    write_table(smaller, "customers", customers)
    report = import_dir(engine, smaller)
    assert report.counts["customers"] == 3
    assert set(report.absent) == {f"{n}.csv" for n in CSV_NAMES if n != "customers"}
    state = db_state(engine)
    assert len(state["customers"]) == 3
    assert all(not rows for name, rows in state.items() if name != "customers")


def test_missing_customers_file_is_an_error(engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        import_dir(engine, tmp_path)
    assert Path(str(caught.value.file)).name == "customers.csv"


def test_bom_file_imports(engine: sa.Engine, sample_data: Path, tmp_path: Path) -> None:
    folder = copy_sample(sample_data, tmp_path / "bom")
    for name in CSV_NAMES:
        write_table(folder, name, read_table(folder, name), bom=True)
    assert (folder / "customers.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert dict(import_dir(engine, folder).counts) == SAMPLE_COUNTS


def test_cp932_file_imports_with_cp932_encoding(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    folder = copy_sample(sample_data, tmp_path / "cp932")
    for name in CSV_NAMES:
        write_table(folder, name, read_table(folder, name), encoding="cp932")
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)  # utf-8 by default
    assert "--encoding cp932" in caught.value.message
    assert Path(str(caught.value.file)).name == "partners.csv"  # the first file read
    assert (caught.value.line, caught.value.column) == (2, "name")

    assert dict(import_dir(engine, folder, encoding="cp932").counts) == SAMPLE_COUNTS
    with engine.connect() as conn:
        address = conn.execute(
            sa.select(Customer.__table__.c.mypage_address).where(
                Customer.__table__.c.corp_id == "C070000001"
            )
        ).scalar_one()
    assert address == "東京都千代田区2-8-19"


def test_suppressions_are_keyed_by_normalized_address(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    folder = copy_sample(sample_data, tmp_path / "supp")
    write_table(
        folder,
        "suppressions",
        Table(
            ["email", "reason", "created_on"],
            [
                ["  ＴＡＲＯ@Example.JP ", "hard_bounce", "2026-01-02"],
                ["x@y.example", "manual", ""],
            ],
        ),
    )
    import_dir(engine, folder)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Suppression.__table__)).all()
    assert sorted(r.email for r in rows) == ["taro@example.jp", "x@y.example"]


# --- bad input: InputError naming file, line and column; the database unchanged --------------


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: change one CSV of the sample and expect this error location."""

    file: str
    change: Callable[[Table], int | None]  # edits the table; returns the expected line
    column: str | None
    words: str


def _set(column: str, index: int, value: str) -> Callable[[Table], int]:
    def change(t: Table) -> int:
        t.rows[index][t.col(column)] = value
        return t.line_of(index)

    return change


def _append_copy(index: int, column: str | None = None, value: str = "") -> Callable[[Table], int]:
    def change(t: Table) -> int:
        row = list(t.rows[index])
        if column is not None:
            row[t.col(column)] = value
        t.rows.append(row)
        return t.line_of(len(t.rows) - 1)

    return change


def _drop_column(column: str) -> Callable[[Table], int]:
    def change(t: Table) -> int:
        i = t.col(column)
        t.header.pop(i)
        for row in t.rows:
            row.pop(i)
        return 1

    return change


def _add_column(column: str) -> Callable[[Table], int]:
    def change(t: Table) -> int:
        t.header.append(column)
        for row in t.rows:
            row.append("x")
        return 1

    return change


def _short_row(index: int) -> Callable[[Table], int]:
    def change(t: Table) -> int:
        t.rows[index].pop()
        return t.line_of(index)

    return change


BAD_INPUTS = {
    "unknown enum": Bad("customers", _set("channel", 0, "Direct"), "channel", "unknown value"),
    "enum with space": Bad("users", _set("status", 4, "active "), "status", "unknown value"),
    "bad date": Bad("customers", _set("applied_on", 2, "2021/04/01"), "applied_on", "YYYY-MM-DD"),
    "impossible date": Bad(
        "partner_contacts", _set("certified_until", 2, "2026-02-30"), "certified_until", "date"
    ),
    "bad boolean": Bad("users", _set("is_system_admin", 3, "yes"), "is_system_admin", "0 or 1"),
    "missing column": Bad("users", _drop_column("status"), "status", "missing column"),
    "unknown column": Bad("contracts", _add_column("note"), "note", "unknown column"),
    "dangling corp_id": Bad(
        "users", _append_copy(0, "corp_id", "C999999999"), "corp_id", "does not match"
    ),
    "dangling partner_id": Bad(
        "partner_contacts", _set("partner_id", 1, "P9999999"), "partner_id", "does not match"
    ),
    "dangling reseller": Bad(
        "customers", _set("reseller_partner_id", 1, "P9999999"), "reseller_partner_id", "match"
    ),
    "duplicate key": Bad("mypage_contacts", _append_copy(5), "role", "duplicate key"),
    "duplicate id": Bad("customers", _append_copy(7), "corp_id", "duplicate key"),
    "empty key": Bad("contracts", _set("corp_id", 0, ""), "corp_id", "value is required"),
    "id with space": Bad("users", _set("user_id", 0, "tanaka 01"), "user_id", "not a valid id"),
    "too long": Bad("partners", _set("name", 0, "長" * 256), "name", "at most 255"),
    "nul character": Bad("mypage_contacts", _set("name", 0, "a\x00b"), "name", "NUL"),
    "wrong field count": Bad("contracts", _short_row(3), None, "expected 3 fields"),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_rejected_and_nothing_changes(
    case: Bad, engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    import_dir(engine, sample_data)
    before = db_state(engine)
    folder = copy_sample(sample_data, tmp_path / "bad")
    table = read_table(folder, case.file)
    line = case.change(table)
    write_table(folder, case.file, table)

    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    error = caught.value
    assert Path(str(error.file)).name == f"{case.file}.csv"
    assert (error.line, error.column) == (line, case.column)
    assert case.words in error.message
    assert f"{case.file}.csv, line {line}" in str(error)
    assert db_state(engine) == before


def test_undecodable_bytes_name_line_and_suggest_cp932(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    import_dir(engine, sample_data)
    before = db_state(engine)
    folder = copy_sample(sample_data, tmp_path / "bytes")
    path = folder / "users.csv"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].decode("utf-8").encode("cp932")  # Japanese only in the name cell
    path.write_bytes(b"".join(lines))
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    assert (caught.value.line, caught.value.column) == (5, "name")
    assert "--encoding cp932" in caught.value.message
    assert db_state(engine) == before


def test_empty_file_is_rejected(engine: sa.Engine, sample_data: Path, tmp_path: Path) -> None:
    import_dir(engine, sample_data)
    before = db_state(engine)
    folder = copy_sample(sample_data, tmp_path / "empty")
    (folder / "partners.csv").write_bytes(b"")
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    assert Path(str(caught.value.file)).name == "partners.csv"
    assert caught.value.line == 1
    assert "empty" in caught.value.message
    assert db_state(engine) == before


def test_unterminated_quote_is_rejected(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    folder = copy_sample(sample_data, tmp_path / "quote")
    with (folder / "contracts.csv").open("a", encoding="utf-8") as fh:
        fh.write('C070000009,"payroll,active\n')
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    assert caught.value.line == 138
    assert "malformed CSV" in caught.value.message


# --- any single-cell corruption: imports, or InputError with the database unchanged ------------

_SMALL = ("partners", "customers", "partner_contacts", "contracts", "suppressions")
_GARBAGE = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(
        [
            "", " ", "C070000001", "C070000002", "P0700001", "P0700009", "2021-02-30",
            "2021-04-01", "0", "1", "active", "terminated", "reseller", "ＡＢＣ", "a\nb", '"',
            "x@example.jp", "X@EXAMPLE.JP", "\x00",
        ]
    ),
)  # fmt: skip


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_corrupted_cell_imports_or_is_a_clean_input_error(
    data: st.DataObject,
    engine: sa.Engine,
    sample_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for name in CSV_NAMES:
        shutil.copyfile(sample_data / f"{name}.csv", folder / f"{name}.csv")
    write_table(
        folder,
        "suppressions",
        Table(["email", "reason", "created_on"], [["a@example.jp", "manual", "2026-01-01"]]),
    )
    name = data.draw(st.sampled_from(_SMALL), label="file")
    table = read_table(folder, name)
    row = data.draw(st.integers(0, len(table.rows) - 1), label="row")
    column = data.draw(st.sampled_from(table.header), label="column")
    table.rows[row][table.col(column)] = data.draw(_GARBAGE, label="value")
    write_table(folder, name, table)

    init_source_schema(engine)  # the first example compares against empty tables
    before = db_state(engine)
    try:
        import_dir(engine, folder)
    except InputError as error:
        # Every validation error points at a line; a database error would not.
        assert error.line is not None
        assert error.file is not None
        assert db_state(engine) == before
    else:
        assert len(db_state(engine)["customers"]) == 88


def test_character_cut_off_at_the_end_of_the_file(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    folder = copy_sample(sample_data, tmp_path / "cut")
    path = folder / "contracts.csv"
    path.write_bytes(path.read_bytes() + "C070000001,売".encode()[:-1])
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    assert (caught.value.line, caught.value.column) == (138, "product")
    assert "cannot be decoded as utf-8" in caught.value.message


def test_a_failure_while_writing_rolls_everything_back(
    sqlite_url: str, sample_data: Path, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    try:
        import_dir(engine, sample_data)
        before = db_state(engine)
        with engine.begin() as conn:
            # The database itself refuses the last table written: the deletes and the inserts
            # of every earlier table must be undone too.
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON suppressions"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        folder = changed_sample(sample_data, tmp_path / "new")
        with pytest.raises(sa.exc.IntegrityError, match="refused"):
            import_dir(engine, folder)
        assert db_state(engine) == before
    finally:
        engine.dispose()
