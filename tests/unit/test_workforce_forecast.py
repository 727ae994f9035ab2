"""`warmline staffing forecast` from a seeded inbound history, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.db import Database
from hotline.models import InboundCallRecord
from tests.utils.cli import CliRunner, ok
from warmline.cli import app

SH = ZoneInfo("Asia/Shanghai")
MONDAYS_BEFORE_W50 = [datetime(2026, 11, d, tzinfo=SH) for d in (9, 16, 23, 30)]


def seed(db: Database, line: str = "community-hotline") -> None:
    """Monday 09:00-09:30: 100 queued calls each of the 4 weeks, 180 s talk; Tuesday 14:00-14:30:
    50 calls in only 2 of the weeks (mean 25), 120 s talk; and calls on another line and one
    that was never queued (menu only), which do not count."""
    rows = []
    for week, monday in enumerate(MONDAYS_BEFORE_W50):
        for i in range(100):
            rows.append((f"m{week}-{i}", line, monday + timedelta(hours=9, seconds=17 * i), True, 180.0))
        if week < 2:
            for i in range(50):
                at = monday + timedelta(days=1, hours=14, seconds=30 * i)
                rows.append((f"t{week}-{i}", line, at, True, 120.0))
        rows.append((f"o{week}", "general-line", monday + timedelta(hours=9), True, 60.0))
        rows.append((f"x{week}", line, monday + timedelta(hours=9), False, 0.0))
    with db.session() as session:
        for channel, name, at, queued, talk in rows:
            session.add(
                InboundCallRecord(
                    channel_id=channel,
                    number="12345",
                    line=name,
                    arrived_at=at,
                    ended_at=at,
                    queued=queued,
                    outcome="agent" if queued else "ended",
                    agent="mei" if queued else None,
                    wait_s=3.0,
                    talk_s=talk,
                )
            )


def test_forecast_per_half_hour_by_erlang_c(cli: CliRunner, db: Database) -> None:
    seed(db)
    out = ok(
        cli, "staffing", "forecast", "--line", "community-hotline", "--week", "2026-W50", "--json"
    ).stdout
    data = json.loads(out)
    assert (data["line"], data["week"], data["method"]) == ("community-hotline", "2026-W50", "erlang_c")
    assert data["target"] == {"answer_within_s": 20, "level": 0.8}
    monday, tuesday = data["slots"]
    # 100 calls x 180 s per half hour = 10 erlangs: 14 agents for 80% in 20 s (as `staffing erlang`).
    assert monday == {
        "start": "2026-12-07T09:00:00+08:00",
        "calls": 100,
        "aht_s": 180,
        "agents": 14,
        "service_level": 0.8884,
        "occupancy": 0.7143,
        "asa_s": 7.84,
    }
    assert (tuesday["start"], tuesday["calls"], tuesday["aht_s"]) == ("2026-12-08T14:00:00+08:00", 25, 120)
    assert tuesday["agents"] == 4  # 25 x 120 / 1800 = 1.67 erlangs


def test_a_line_staffed_by_occupancy_only(
    cli: CliRunner, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "inbound.yaml"
    config.write_text(
        "timezone: Asia/Shanghai\nnumbers:\n  '12399':\n    name: elder-line\n    max_occupancy: 0.5\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("WARMLINE_INBOUND_CONFIG", str(config))
    seed(db, line="elder-line")
    data = json.loads(
        ok(cli, "staffing", "forecast", "--line", "elder-line", "--week", "2026-W50", "--json").stdout
    )
    assert (data["method"], data["target"]) == ("occupancy", {"max_occupancy": 0.5})
    assert [s["agents"] for s in data["slots"]] == [20, 4]  # 10 / 0.5 and 1.67 / 0.5 erlangs, rounded up
    assert "service_level" not in data["slots"][0]


def test_bad_week_or_unknown_line_is_named(cli: CliRunner) -> None:
    result = cli.invoke(app, ["staffing", "forecast", "--line", "community-hotline", "--week", "50"])
    assert result.exit_code == 2 and "2026-W50" in result.output
    result = cli.invoke(app, ["staffing", "forecast", "--line", "nope", "--week", "2026-W50"])
    assert result.exit_code == 2 and "'nope'" in result.output and "community-hotline" in result.output
