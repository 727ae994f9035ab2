"""Shared fixtures. Every database test runs on SQLite and on the real PostgreSQL.

The schema is built once per session by the real Alembic migrations into a template (a file for
SQLite, a template database for PostgreSQL); each test then gets a fresh copy of it, cheaply.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from core.db import Database
from core.i18n import use_locale
from core.settings import Settings
from tests.utils.cli import cli_runner
from warmline import migrate

_PG_FILE = Path(__file__).resolve().parent.parent / "var" / "test-pg-url"  # written by scripts/services.sh
PG_ADMIN = os.environ.get("WARMLINE_TEST_PG") or (
    _PG_FILE.read_text().strip() if _PG_FILE.exists() else "postgresql://postgres@127.0.0.1:5432/test"
)
# OWASP's 19 MiB × 2 argon2id profile instead of 64 MiB × 3: still argon2id, a fifth of the CPU per
# sign-in (several hundred in a run). Services the tests start inherit it. The default profile is
# checked in tests/unit/test_accounts.py.
os.environ.setdefault("WARMLINE_ARGON2_MEMORY_KIB", "19456")
os.environ.setdefault("WARMLINE_ARGON2_TIME_COST", "2")
SA_PG = "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0]


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


# The test files that take longest (real calls in real time), started first so that test files
# run side by side (pytest-xdist, a file per worker) all finish at about the same time.
LONGEST_FIRST = (
    "test_faults_db_bus_lab.py",
    "test_dialer_campaign.py",
    "test_pacing_lab.py",
    "test_recording_chain_lab.py",
    "test_help_lab.py",
    "test_nailed_lab.py",
    "test_ari_faults_lab.py",
    "test_softphone_install.py",
    "test_privacy_lab.py",
    "test_dialer_crash.py",
    "test_welfare_campaign_lab.py",
    "test_inbound_lab.py",
    "test_ivr_lab.py",
    "test_softphone_lab.py",
    "test_lab.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first; browser tests last: while Playwright's sync API runs, no other
    test in that process can use asyncio.run."""

    def order(item: pytest.Item) -> tuple[bool, int]:
        name = item.path.name
        return "/e2e/" in str(item.path), LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(
            LONGEST_FIRST
        )

    items.sort(key=order)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"wl_tpl_{uuid.uuid4().hex[:10]}"
    _pg(f"CREATE DATABASE {name}")
    migrate.upgrade(f"{SA_PG}/{name}")
    yield name
    _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def on_database(kind: str) -> pytest.MarkDecorator:
    """Run a real-time lab test on one database only. For tests whose subject is Asterisk (media,
    AMD, a recording's channels), not the database: the same logic runs on both databases in the
    fake-Asterisk tests, and the lab tests between them meet Asterisk with each database."""
    return pytest.mark.parametrize("db_url", [kind], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "warmline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"wl_t_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name} TEMPLATE {template}")
    yield f"{SA_PG}/{name}"
    _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Settings for a private var dir; the Asterisk node points at nothing unless a test says so."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=db_url,
        topic_prefix=f"warmline-test-{uuid.uuid4().hex[:8]}",  # tests never hear each other on the bus
        dialer_enabled=False,  # an app under test places no calls unless the test runs a dialer
        _env_file=None,
    )


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """A `warmline` command runner on this test's database and its own var folder."""
    with cli_runner(monkeypatch, tmp_path / "var", db_url) as runner:
        yield runner


@pytest.fixture
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test reads the English messages: zh-CN is everyone's default, so a test written against
    the English text says so (`pytest.mark.usefixtures("english")`). It covers code called in the
    test, and the command line (WARMLINE_LANG); a request to the API says its language itself
    (Accept-Language, or the user's choice)."""
    monkeypatch.setenv("WARMLINE_LANG", "en")
    with use_locale("en"):
        yield
