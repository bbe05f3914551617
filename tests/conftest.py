"""Shared fixtures: real databases (SQLite file, PostgreSQL, MariaDB), one fresh database per test.

PostgreSQL and MariaDB are always required in CI (`CI` set): a missing server fails there. Locally
their tests skip with a message that says how to start the server.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tools.postfix import PostfixTools, PostfixUnavailable, postfix_tools

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "tests" / "data" / "sample"

PG_ADMIN_URL = os.environ.get(
    "SWMAIL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
MARIADB_ADMIN_URL = os.environ.get(
    "SWMAIL_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
)


@pytest.fixture(autouse=True)
def _english_unless_asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests read English unless they choose a language: a developer's `LANG=ja_JP.UTF-8` (or
    `SWMAIL_UI_LANGUAGE`) must not change what the suite sees (issue 11)."""
    from jobs.i18n import set_language

    for variable in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "SWMAIL_UI_LANGUAGE"):
        monkeypatch.delenv(variable, raising=False)
    set_language("en")
    yield
    set_language("en")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _unavailable(name: str, port: int, how: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not reachable on 127.0.0.1:{port} in CI (.ci/run starts it)")
    pytest.skip(f"{name} not running on 127.0.0.1:{port}; start it with: {how}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'swmail.sqlite3'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    if not _port_open(5432):
        _unavailable(
            "PostgreSQL",
            5432,
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        )
    name = f"swmail_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    if not _port_open(3306):
        _unavailable(
            "MariaDB",
            3306,
            "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
        )
    name = f"swmail_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    base, _, query = MARIADB_ADMIN_URL.partition("?")
    url = base.rstrip("/") + f"/{name}" + (f"?{query}" if query else "")
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind: the same test runs on all three."""
    name = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mariadb_url"}[request.param]
    return str(request.getfixturevalue(name))


@pytest.fixture
def sample_data() -> Path:
    if not SAMPLE_DATA.is_dir():
        pytest.fail(f"the sample data set is missing at {SAMPLE_DATA}")
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def postfix() -> PostfixTools:
    """Postfix's smtp-sink/smtp-source (tools/postfix.py fetches them once into var/postfix)."""
    try:
        return postfix_tools()
    except PostfixUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"smtp-sink is required in CI: {exc}")
        pytest.skip(f"smtp-sink unavailable ({exc}); `python -m tools.postfix` fetches it")


@pytest.fixture
def dump_dir() -> Iterator[Path]:
    """A folder smtp-sink can dump into when it runs as nobody (pytest's tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="swmail-sink-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
