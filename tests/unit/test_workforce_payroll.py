"""`warmline workforce payroll` on SQLite and PostgreSQL: hand-computed figures, CSV and XLSX, audited."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.states import record_state
from core.audit import AuditEntry, recent
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.messages import AgentState
from core.settings import Settings
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app
from warmline.cli import app

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


def seed(db: Database) -> None:
    """November 2026 (past: the command counts up to now). mei: a night shift on the 3rd, 20:00-02:30,
    with two calls (10 + 20 min) and a 30-min break, then a 10-hour shift on the 4th, 18:00-04:00.
    li: 3 h on the 3rd. mei's shifts on the 1st (before the period) and 6th (after it) do not count."""
    states = [
        ("mei", at(1, 9), "available"),
        ("mei", at(1, 12), "logged_out"),
        ("mei", at(3, 20), "available"),
        ("mei", at(3, 21), "on_call"),
        ("mei", at(3, 21, 10), "wrap_up"),
        ("mei", at(3, 21, 15), "on_call"),
        ("mei", at(3, 21, 35), "available"),
        ("mei", at(3, 23), "break"),
        ("mei", at(3, 23, 30), "available"),
        ("mei", at(4, 2, 30), "logged_out"),
        ("mei", at(4, 18), "available"),
        ("mei", at(5, 4), "logged_out"),
        ("mei", at(6, 23), "available"),
        ("mei", at(7, 1), "logged_out"),
        ("li", at(3, 9), "available"),
        ("li", at(3, 12), "logged_out"),
    ]
    with db.session() as session:
        for agent, since, state in states:
            record_state(
                session, AgentState(agent=agent, state=state, since=since.astimezone(ZoneInfo("UTC")))
            )


def test_payroll_csv_matches_hand_computed_hours_and_is_audited(
    cli: CliRunner, db: Database, tmp_path: Path
) -> None:
    seed(db)
    out = tmp_path / "pay.csv"
    summary = ok(
        cli,
        "workforce",
        "payroll",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-05",
        "--output",
        str(out),
        "--json",
    ).stdout
    assert json.loads(summary) == {"output": str(out), "format": "csv", "agents": 2}
    with out.open(encoding="utf-8-sig") as f:
        rows = {row["agent"]: row for row in csv.DictReader(f)}
    # mei: shift 1 = 6.5 h logged in - 0.5 h break = 6 h worked, night 22:00-02:30 less the break = 4 h;
    # shift 2 = 10 h worked, 2 h over the 8-hour day, night 22:00-04:00 = 6 h.
    mei = rows["mei"]
    assert (mei["shifts"], mei["calls"], mei["talk_h"]) == ("2", "2", "0.5")
    assert (mei["worked_h"], mei["normal_h"], mei["night_h"], mei["overtime_h"]) == (
        "16.0",
        "14.0",
        "10.0",
        "2.0",
    )
    assert (mei["short_days"], mei["daily_target_h"]) == ("0", "4.0")
    assert (rows["li"]["worked_h"], rows["li"]["short_days"]) == ("3.0", "1")
    with db.session() as session:
        entry = recent(session, 1)[0]
        assert (entry.action, entry.actor, entry.target) == (
            "workforce.payroll_export",
            "cli",
            "2026-11-02..2026-11-05",
        )
        assert entry.detail["agents"] == ["li", "mei"]


def test_payroll_xlsx_for_one_agent(cli: CliRunner, db: Database, tmp_path: Path) -> None:
    seed(db)
    out = tmp_path / "pay.xlsx"
    ok(
        cli,
        "workforce",
        "payroll",
        "--from",
        "2026-11-03",
        "--to",
        "2026-11-03",
        "--agent",
        "mei",
        "--format",
        "xlsx",
        "--output",
        str(out),
    )
    sheet = openpyxl.load_workbook(out).active
    header, *data = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert len(data) == 1
    row = dict(zip(header, data[0], strict=True))
    assert (row["agent"], row["worked_h"], row["night_h"], row["overtime_h"], row["calls"]) == (
        "mei",
        6,
        4,
        0,
        2,
    )


def test_payroll_names_bad_options_and_writes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    cases = [
        (["--from", "3 Nov", "--to", "2026-11-05"], "--from"),
        (["--from", "2026-11-05", "--to", "2026-11-01"], "--to"),
        (["--from", "2026-11-01", "--to", "2026-11-01", "--format", "pdf"], "--format"),
    ]
    for options, named in cases:
        result = cli.invoke(app, ["workforce", "payroll", *options, "--output", out])
        assert result.exit_code == 2 and named in result.output, result.output
    assert not Path(out).exists()


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("boss", Role.supervisor), ("li", Role.agent)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_a_supervisor_downloads_the_payroll_and_an_agent_may_not(client: TestClient, db: Database) -> None:
    seed(db)
    query = {"from": "2026-11-02", "to": "2026-11-05", "agent": "mei", "format": "xlsx"}
    assert client.get("/api/workforce/payroll", params=query, headers=login(client, "li")).status_code == 403
    resp = client.get("/api/workforce/payroll", params=query, headers=login(client, "boss"))
    assert resp.status_code == 200, resp.text
    assert "payroll-2026-11-02-2026-11-05.xlsx" in resp.headers["content-disposition"]
    header, row = openpyxl.load_workbook(io.BytesIO(resp.content)).active.iter_rows(values_only=True)
    assert dict(zip(header, row, strict=True))["overtime_h"] == 2
    with db.session() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "workforce.payroll_export")).one()
        assert (entry.actor, entry.detail["agents"], entry.detail["format"]) == ("boss", ["mei"], "xlsx")
    backwards = {"from": "2026-11-05", "to": "2026-11-01"}
    assert (
        client.get("/api/workforce/payroll", params=backwards, headers=login(client, "boss")).status_code
        == 422
    )
