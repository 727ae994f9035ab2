"""Shared fixtures. Every database test runs on SQLite and on the real PostgreSQL.

The schema is built once per session by the real Alembic migrations into a template (a file for
SQLite, a template database for PostgreSQL); each test then gets a fresh copy of it, cheaply.
"""

from __future__ import annotations

import gc
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core.db import Database
from core.i18n import use_locale
from core.settings import Settings
from tests.utils.cli import CliRunner, cli_runner
from tests.utils.pg_pool import PgDatabasePool
from warmline import migrate

# `--cpu-report`: CPU per test file, for tuning the suite's time (tests/utils/cpu_report.py).
pytest_plugins = ["tests.utils.cpu_report"]

_PG_FILE = Path(__file__).resolve().parent.parent / "var" / "test-pg-url"  # written by scripts/services.sh
PG_ADMIN = os.environ.get("WARMLINE_TEST_PG") or (
    _PG_FILE.read_text().strip() if _PG_FILE.exists() else "postgresql://postgres@127.0.0.1:5432/test"
)
# The cheapest argon2id the service accepts (7 MiB, one pass) instead of 64 MiB × 3: the suite tests
# sign-in logic, not the hash's strength, and hashes a few thousand passwords (users made for each
# test). Services the tests start inherit it. The default profile is checked in
# tests/unit/test_accounts.py.
os.environ.setdefault("WARMLINE_ARGON2_MEMORY_KIB", "7168")
os.environ.setdefault("WARMLINE_ARGON2_TIME_COST", "1")
SA_PG = "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0]


def _pg(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


# The test files that take longest (real calls in real time), started first so that test files
# run side by side (pytest-xdist, a file per worker) all finish at about the same time.
# Files by their time in a fresh-clone `make test` (4 workers, JUnit times, longest first). xdist
# hands each worker whole files in this order (`--no-loadscope-reorder` in scripts/run-tests.sh: by
# default it sorts files by their number of tests, which put the one-test labs last), so the longest
# start first and the short ones fill in at the end (longest-processing-time first). Browser files
# are among the rest: each closes its Playwright with its module, so asyncio.run works again in that
# worker afterwards.
LONGEST_FIRST = (
    "test_agent_profiles.py",
    "test_console_languages.py",
    "test_faults_db_bus_lab.py",
    "test_dialer_campaign.py",
    "test_pacing_lab.py",
    "test_transfer_fake_ari.py",
    "test_campaign_live.py",
    "test_analytics.py",
    "test_dialer_cli.py",
    "test_sign_in_service.py",
    "test_nailed_screen_pop_service.py",
    "test_agent_dial_api.py",
    "test_softphone_install.py",
    "test_ari_faults_lab.py",
    "test_sign_in_security.py",
    "test_campaigns_page.py",
    "test_nailed_lab.py",
    "test_lease_lab.py",
    "test_dialer_takeover_fake_ari.py",
    "test_dialer_api.py",
    "test_dialer_engine.py",
    "test_inbound_lab.py",
    "test_pacing_engine_fake_ari.py",
    "test_transfer_lab.py",
    "test_agents_pages.py",
    "test_recording_chain_lab.py",
    "test_api.py",
    "test_ari_pressure.py",
    "test_softphone_lab.py",
    "test_reports_page.py",
    "test_reconcile_fake_ari.py",
    "test_reviews_page.py",
    "test_pacing_simulator.py",
    "test_recordings_registry.py",
    "test_wrapup.py",
    "test_softphone_form.py",
    "test_ivr_lab.py",
    "test_privacy_lab.py",
    "test_softphone_ui.py",
    "test_welfare_campaign_lab.py",
    "test_practice_lab.py",
    "test_console.py",
    "test_handover_fake_ari.py",
    "test_agent_profiles_page.py",
    "test_placed_calls_fake_ari.py",
    "test_dialer_import.py",
    "test_softphone_transfer.py",
    "test_cases_page.py",
    "test_help_lab.py",
    "test_workforce_shifts.py",
    "test_console_i18n.py",
    "test_dialer_crash.py",
    "test_accounts.py",
    "test_dialer_stats_api.py",
    "test_welfare.py",
    "test_wrapup_api.py",
    "test_least_privilege.py",
    "test_profile_routing.py",
    "test_shifts_page.py",
    "test_survey_lab.py",
    "test_wellbeing_lab.py",
    "test_cooldown_service.py",
    "test_softphone_cooldown.py",
    "test_dialer_lease.py",
    "test_lab.py",
    "test_desk_service_lab.py",
    "test_sip_tls_lab.py",
    "test_alerts_page.py",
    "test_softphone_my_day.py",
    "test_desk_lab.py",
    "test_preview_dial_lab.py",
    "test_bridge_lab.py",
    "test_agent_states.py",
    "test_softphone_real_call.py",
    "test_provisioning_lab.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first (LONGEST_FIRST), then the rest in their own order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze what importing and collecting made (the project, its libraries, 2 000 test items):
    the collector then never scans it again, neither in the automatic full collections during the
    run nor in pytest's five `gc.collect()` at the end of each worker (about 3 CPU-seconds a worker
    here). Measured on three unit files: 28.7 against 25.6 CPU-seconds."""
    gc.freeze()


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


@pytest.fixture(scope="session")
def pg_pool(pg_template: str) -> Iterator[PgDatabasePool]:
    """This worker's PostgreSQL test databases, emptied and reused rather than made and dropped."""
    pool = PgDatabasePool(PG_ADMIN, SA_PG, pg_template)
    yield pool
    pool.close()


def on_database(kind: str) -> pytest.MarkDecorator:
    """Run a real-time lab test on one database only. For tests whose subject is Asterisk (media,
    AMD, a recording's channels), not the database: the same logic runs on both databases in the
    fake-Asterisk tests, and the lab tests between them meet Asterisk with each database."""
    return pytest.mark.parametrize("db_url", [kind], indirect=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, private to the test (PostgreSQL's reused, emptied)."""
    if request.param == "sqlite":
        path = tmp_path / "warmline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    pool: PgDatabasePool = request.getfixturevalue("pg_pool")
    name = pool.take()
    yield f"{SA_PG}/{name}"
    pool.give_back(name)


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
