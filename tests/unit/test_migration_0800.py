"""Migration 0800 on a database with data, both kinds: the recordings get their campaign's name and
welfare flag, and nothing that refers to a recording (QA items) is lost on the way."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import SA_PG, _pg
from warmline import migrate

T = "2026-11-23 10:00:00+00:00"
REC = str(uuid.UUID(int=8))


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0700(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'w.db'}"
        migrate.upgrade(url, "0700")
        yield url
        return
    name = f"wl_m_{uuid.uuid4().hex[:12]}"
    _pg(f"CREATE DATABASE {name}")
    url = f"{SA_PG}/{name}"
    migrate.upgrade(url, "0700")
    yield url
    _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


ROWS = {
    "campaigns": {
        "id": 7, "name": "长者关怀", "kind": "agent", "status": "draft", "elder_welfare": True,
        "timezone": "Asia/Shanghai", "windows": "{}", "skip_dates": "[]", "retry": "{}", "max_attempts": 3,
        "daily_cap": 1, "rolling_cap": 1, "priority": 0, "amd": "off", "max_channels": 10,
        "calls_per_second": 1.0, "allowed_countries": '["CN"]', "created_at": T, "created_by": "t",
        "updated_at": T,
    },
    "call_recordings": {
        "id": REC, "path": f"2026/11/23/{REC}.wav", "campaign_id": 7, "started_at": T, "channels": 2,
        "source": "agent-bridge",
    },
    "qa_samples": {
        "id": 1, "period": "2026-W48", "seed": 1, "starts_at": T, "ends_at": T, "params": "{}",
        "population": 1, "created_at": T, "created_by": "t",
    },
    "qa_items": {
        "id": 1, "sample_id": 1, "recording_id": REC, "sample_kind": "random", "stratum": "s",
        "reason": "{}", "reason_text": "r", "reviewers_needed": 1, "status": "open", "created_at": T,
    },
}  # fmt: skip


def test_recordings_keep_their_qa_rows_and_learn_their_campaign(url_at_0700: str) -> None:
    engine = sa.create_engine(url_at_0700)
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as c:
        if engine.dialect.name == "sqlite":
            c.exec_driver_sql("PRAGMA foreign_keys=ON")
        for name, row in ROWS.items():
            table = tables.tables[name]
            c.execute(sa.insert(table).values(**{k: _value(table, k, v) for k, v in row.items()}))
    engine.dispose()
    migrate.upgrade(url_at_0700)
    engine = sa.create_engine(url_at_0700)
    with engine.connect() as c:
        assert c.exec_driver_sql("SELECT count(*) FROM qa_items").scalar() == 1, "no QA row lost"
        stored = c.exec_driver_sql("SELECT campaign, elder_welfare FROM call_recordings").one()
    engine.dispose()
    assert (stored[0], bool(stored[1])) == ("长者关怀", True)


def _value(table: sa.Table, column: str, value: object) -> object:
    """Reflected JSON columns want objects, date-times want date-times."""
    kind = table.c[column].type
    if isinstance(kind, sa.JSON) and isinstance(value, str):
        return json.loads(value)
    if isinstance(kind, sa.DateTime) and value == T:
        return datetime(2026, 11, 23, 10, tzinfo=UTC)
    return value
