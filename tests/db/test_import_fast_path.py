"""`db import`'s fast path (issue 10): a row checker compiled per file, the database's own
foreign-key checks and secondary indexes out of the load, rebuilt in the same transaction.

The fast path only decides "accept or not"; whatever it does not accept is checked again by
the exact path, which words the error. So it must accept exactly what the exact path accepts,
with the same values, and the schema must come out of every import, failed or not, as it went
in — on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.errors import InputError
from jobs.source import importer
from jobs.source.engine import make_engine
from jobs.source.importer import _checked, _fast_checked, _file_spec, import_dir
from jobs.source.models import init_source_schema, source_tables
from tests.db.csvdata import (
    CSV_NAMES,
    Table,
    changed_sample,
    copy_sample,
    db_state,
    read_table,
    write_table,
)

SPECS = {spec.table.name: spec for spec in map(_file_spec, source_tables())}
REFERENCED = {target for spec in SPECS.values() for target in spec.references.values()}

_CELLS = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12),
    st.sampled_from(
        [
            "", " ", "C070000001", "C070000001 ", "P0700001", "P9999999", "tanaka01",
            "tanaka\u00a001", "tanaka\u200b01", "a\x1fb", "a\x85b", "2020-02-29", "2021-02-29",
            "2021-4-01", "0", "1", "01", "true", "admin", "Admin", "active", "direct",
            "reseller", "manual", "x@example.jp", " X@EXAMPLE.JP ", "a" * 64, "a" * 65,
            "長" * 255, "長" * 256, "a\nb", '"', "ＡＢＣ",
        ]
    ),
)  # fmt: skip


def _outcome(rows: Callable[[], Iterator[tuple[Any, ...]]]) -> tuple[str, list[Any]]:
    try:
        return "accepted", list(rows())
    except Exception:  # the fast path's misses are not InputError: only the verdict counts
        return "refused", []


@pytest.fixture
def sample_keys(sample_data: Path) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for name in ("partners", "customers"):
        for _row in _checked(SPECS[name], sample_data / f"{name}.csv", "utf-8", keys, fast=True):
            pass
    return keys


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fast_checks_accept_exactly_what_the_exact_checks_accept(
    data: st.DataObject,
    sample_data: Path,
    sample_keys: dict[str, set[str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    name = data.draw(st.sampled_from(CSV_NAMES), label="file")
    spec = SPECS[name]
    table = read_table(sample_data, name)
    if not table.rows:
        table.rows = [["a@example.jp", "manual", "2026-01-01"]]
    row = list(table.rows[0])
    column = data.draw(st.sampled_from(table.header), label="column")
    row[table.col(column)] = data.draw(_CELLS, label="value")
    folder = tmp_path_factory.mktemp("cell")
    write_table(folder, name, Table(table.header, [row]))
    path = folder / f"{name}.csv"

    exact = _outcome(lambda: _checked(spec, path, "utf-8", dict(sample_keys), fast=True))
    fast = _outcome(
        lambda: _fast_checked(spec, path, "utf-8", dict(sample_keys), keep_keys=name in REFERENCED)
    )
    assert fast == exact


def test_fast_path_keeps_the_keys_other_files_refer_to(sample_data: Path) -> None:
    exact: dict[str, set[str]] = {}
    fast: dict[str, set[str]] = {}
    for name in ("partners", "customers"):
        path = sample_data / f"{name}.csv"
        rows = list(_checked(SPECS[name], path, "utf-8", exact, fast=True))
        assert list(_fast_checked(SPECS[name], path, "utf-8", fast, keep_keys=True)) == rows
        assert fast == exact


# --- the schema comes out of every import as it went in ----------------------------------------


def _schema(engine: sa.Engine) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    found: dict[str, Any] = {}
    for table in source_tables():
        found[table.name] = (
            sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table.name)
            ),
            sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(table.name)
            ),
            tuple(inspector.get_pk_constraint(table.name)["constrained_columns"]),
        )
    return found


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    init_source_schema(engine)
    yield engine
    engine.dispose()


def test_indexes_and_foreign_keys_survive_imports_good_and_bad(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    schema = _schema(engine)
    # Each table's foreign keys and secondary indexes are there to begin with.
    assert schema["customers"][0] and schema["customers"][1]
    assert schema["partner_contacts"][0] and schema["users"][1]

    import_dir(engine, sample_data)
    assert _schema(engine) == schema
    before = db_state(engine)

    folder = copy_sample(sample_data, tmp_path / "bad")
    users = read_table(folder, "users")
    users.rows.append(list(users.rows[3]))  # a duplicate key: refused by the primary key
    write_table(folder, "users", users)
    with pytest.raises(InputError) as caught:
        import_dir(engine, folder)
    assert (caught.value.line, caught.value.column) == (len(users.rows) + 1, "user_id")
    assert "duplicate key (corp_id=" in caught.value.message
    assert "first on line 5" in caught.value.message
    assert _schema(engine) == schema
    assert db_state(engine) == before

    # Still enforced by the database after the import: the foreign keys were rebuilt.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO contracts (corp_id, product, status) VALUES ('C999', 'mail', 'active')"
            )
        )


_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON suppressions"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON suppressions"
        " FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
    "mariadb": [
        "CREATE TRIGGER refuse BEFORE INSERT ON suppressions FOR EACH ROW"
        " SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused'"
    ],
}
_UNREFUSE = {
    "sqlite": ["DROP TRIGGER refuse"],
    "postgresql": ["DROP TRIGGER refuse ON suppressions", "DROP FUNCTION refuse()"],
    "mariadb": ["DROP TRIGGER refuse"],
}


def test_a_database_refusal_rolls_back_rows_and_schema_changes(
    engine: sa.Engine, sample_data: Path, tmp_path: Path
) -> None:
    """The database refuses the last file: the deletes, every earlier file's rows and the
    dropped foreign keys and indexes are all restored, and its own error goes on unchanged."""
    kind = "mariadb" if engine.dialect.name in ("mysql", "mariadb") else engine.dialect.name
    import_dir(engine, sample_data)
    schema, before = _schema(engine), db_state(engine)
    with engine.begin() as conn:
        for statement in _REFUSE[kind]:
            conn.exec_driver_sql(statement)
    try:
        folder = changed_sample(sample_data, tmp_path / "new")
        with pytest.raises(Exception, match="refused") as caught:
            import_dir(engine, folder)
        assert not isinstance(caught.value, InputError)
        assert db_state(engine) == before
        assert _schema(engine) == schema
    finally:
        with engine.begin() as conn:
            for statement in _UNREFUSE[kind]:
                conn.exec_driver_sql(statement)


@pytest.mark.parametrize(("chunk", "parameters"), [(7, 20), (100, 999), (5, 1)])
def test_sqlite_groups_of_rows_write_every_row_once(
    sqlite_url: str, sample_data: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, parameters: int
) -> None:
    """Multi-row INSERTs: chunks that are not a multiple of the group, and groups of one."""
    engine = make_engine(sqlite_url)
    try:
        import_dir(engine, sample_data)
        expected = db_state(engine)
        monkeypatch.setattr(importer, "CHUNK_ROWS", chunk)
        monkeypatch.setattr(importer, "SQLITE_PARAMETERS", parameters)
        init_source_schema(engine)
        with engine.begin() as conn:
            for table in reversed(source_tables()):
                conn.execute(table.delete())
        import_dir(engine, sample_data)
        assert db_state(engine) == expected
    finally:
        engine.dispose()


# Values that LOAD DATA's text format must carry exactly: its separators and escape character,
# a literal "\N" (its NULL), a carriage return, quotes, characters outside the BMP, and spaces
# alone (which MariaDB's collations compare equal to the empty string).
_AWKWARD = [
    " ",
    "   ",
    "末尾の空白  ",
    "株式会社😀絵文字",
    "タブ\tと\\と\n改行",
    "\\N",
    "末尾\\",
    'a\r\nb "quoted" \\t',
    "\\",
]


@pytest.mark.mariadb
@pytest.mark.parametrize("local_infile", [True, False], ids=["load-data", "inserts"])
def test_mariadb_load_round_trips_awkward_values(
    mariadb_url: str,
    sample_data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_infile: bool,
) -> None:
    """LOAD DATA LOCAL (or, when the server does not allow it, INSERTs) stores every value as
    the file has it, NULLs and booleans included: the state equals SQLite's import of it."""
    folder = copy_sample(sample_data, tmp_path / "awkward")
    customers = read_table(folder, "customers")
    for i, value in enumerate(_AWKWARD):
        customers.rows[i][customers.col("company_name")] = value
        customers.rows[i][customers.col("company_info_address")] = value[::-1]
    write_table(folder, "customers", customers)
    users = read_table(folder, "users")
    users.rows[0][users.col("name")] = "山田 太郎🎉\t\\"
    write_table(folder, "users", users)

    sqlite = make_engine(f"sqlite:///{tmp_path / 'expected.sqlite3'}")
    import_dir(sqlite, folder)
    expected = db_state(sqlite)
    sqlite.dispose()

    used: list[str] = []
    real = importer._write_mariadb

    def load(conn: sa.Connection, spec: Any, rows: Iterator[tuple[Any, ...]]) -> int:
        used.append(spec.file_name)
        return real(conn, spec, rows)

    monkeypatch.setattr(importer, "_write_mariadb", load)
    if not local_infile:
        monkeypatch.setattr(importer, "_local_infile_allowed", lambda engine: False)
    engine = make_engine(mariadb_url)
    try:
        import_dir(engine, folder)
        assert db_state(engine) == expected
        with engine.connect() as conn:
            names = conn.exec_driver_sql(
                "SELECT company_name FROM customers WHERE company_name IS NOT NULL"
            ).scalars()
            assert set(_AWKWARD) <= set(names)
    finally:
        engine.dispose()
    assert bool(used) is local_infile


@pytest.mark.mariadb
def test_mariadb_duplicate_key_skipped_by_load_data_is_worded(
    mariadb_url: str, sample_data: Path, tmp_path: Path
) -> None:
    """LOAD DATA LOCAL only warns about a duplicate key: the import still fails with the exact
    path's words, and nothing changes."""
    engine = make_engine(mariadb_url)
    try:
        import_dir(engine, sample_data)
        before = db_state(engine)
        folder = copy_sample(sample_data, tmp_path / "dup")
        contracts = read_table(folder, "contracts")
        contracts.rows.append(list(contracts.rows[0]))
        write_table(folder, "contracts", contracts)
        with pytest.raises(InputError, match="duplicate key") as caught:
            import_dir(engine, folder)
        assert caught.value.line == contracts.line_of(len(contracts.rows) - 1)
        assert db_state(engine) == before
    finally:
        engine.dispose()
