"""make_engine: one engine per supported URL form, and a clear ConfigError for everything else."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from jobs.errors import ConfigError
from jobs.source.engine import make_engine, snapshot


def test_sqlite_creates_the_folder_and_sets_pragmas(tmp_path: Path) -> None:
    file = tmp_path / "nested" / "deeper" / "swmail.sqlite3"
    engine = make_engine(f"sqlite:///{file}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
    assert file.is_file()


@pytest.mark.postgres
def test_plain_postgresql_url_uses_psycopg(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    engine = make_engine(plain)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_url_uses_pymysql_and_utf8mb4(mariadb_url: str) -> None:
    plain = mariadb_url.replace("mysql+pymysql://", "mariadb://").split("?")[0]
    engine = make_engine(plain)
    try:
        assert engine.dialect.driver == "pymysql"
        assert engine.url.query["charset"] == "utf8mb4"
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT @@character_set_client").scalar() == "utf8mb4"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not a url", "not a valid URL"),
        ("oracle://scott@localhost/db", "not supported"),
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot connect"),
        ("mariadb://root@127.0.0.1:1/nothing", "cannot connect"),
    ],
)
def test_bad_url_or_unreachable_server_is_one_line_config_error(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    assert words in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 2


@pytest.mark.postgres
def test_missing_postgres_database_is_config_error(pg_url: str) -> None:
    with pytest.raises(ConfigError, match="cannot connect"):
        make_engine(pg_url + "_missing")


def test_password_is_not_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine("postgresql://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in caught.value.message


def test_snapshot_does_not_see_a_later_commit(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with snapshot(engine) as reader:
            assert reader.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 1
            with engine.begin() as writer:
                writer.exec_driver_sql("INSERT INTO t VALUES (2)")
            assert reader.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 2
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://mailer:hunter2@127.0.0.1:abc/db", "the port is not a number"),
        ("mariadb://mailer:hunter2@127.0.0.1:5x/db", "the port is not a number"),
        ("postgresql://mailer:hunter2@127.0.0.1:70000/db", "outside 1-65535"),
        ("postgresql//mailer:hunter2@127.0.0.1/db", "not a valid URL"),
        ("postgresql://mailer:hunt@er2@127.0.0.1:1/db", "percent-encode it"),
        ("postgresql://mailer:hunt%40er2@127.0.0.1:1/db", "cannot connect"),
        ("postgresql://mailer:hunter2@127.0.0.1:1/db", "cannot connect"),
    ],
)
def test_malformed_urls_are_one_line_with_the_password_masked(url: str, words: str) -> None:
    """Issue 6: a port that is not a number was a ValueError (exit 1, URL in the traceback)."""
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    message = caught.value.message
    assert words in message and "\n" not in message
    assert "hunter2" not in message and "er2@" not in message
    assert "***" in message
