"""Wrap-ups in `warmline campaign contacts NAME` and in the campaign export, through the real CLI, on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.audit import AuditEntry
from core.db import Database
from dialer.results import CONTACT_KEYS
from tests.unit.test_wrapup import PHONE, T0, hang_up, local, make, taken, wrap
from tests.utils.cli import ok
from warmline.cli import app

SECOND = "+8613800000002"
THIRD = "+8613800000003"


@pytest.fixture
def wrapped(db: Database) -> None:
    """Three contacts: a callback with form answers, an opt-out with a number in its note, one not
    called yet."""
    make(db, phones=(PHONE, SECOND, THIRD))
    first = taken(db)
    hang_up(db, first, T0 + timedelta(minutes=3))
    wrap(
        db, first, "callback", T0 + timedelta(minutes=4), callback_at=local(2024, 11, 4, 15),
        note="下午三点", answers={"接种": "是", "年龄": 81},
    )  # fmt: skip
    second = taken(db)
    hang_up(db, second, T0 + timedelta(minutes=8))
    wrap(db, second, "opt_out", T0 + timedelta(minutes=9), note="换号了，新号 13912345678")


def test_campaign_contacts_json_has_exactly_the_keys(cli: CliRunner, db: Database, wrapped: None) -> None:
    records = json.loads(ok(cli, "campaign", "contacts", "c1", "--json").stdout)
    assert [set(r) for r in records] == [set(CONTACT_KEYS)] * 3
    callback, opted_out, untouched = records
    assert callback == {
        "contact_id": callback["contact_id"],
        "phone": "138****0001",
        "state": "pending",
        "outcome": "agent",
        "attempts": 1,
        "disposition": "callback",
        "note": "下午三点",
        "callback_at": "2024-11-04T15:00:00+08:00",
        "callback_agent": "mei",
        "answers": {"接种": "是", "年龄": 81},
    }
    assert (opted_out["state"], opted_out["disposition"], opted_out["callback_at"]) == (
        "done",
        "opt_out",
        None,
    )
    assert opted_out["note"] == "换号了，新号 139****5678", "numbers in notes are masked too"
    assert untouched | {"contact_id": 0} == {
        "contact_id": 0, "phone": "138****0003", "state": "pending", "outcome": None, "attempts": 0,
        "disposition": None, "note": None, "callback_at": None, "callback_agent": None, "answers": {},
    }  # fmt: skip
    with db.session() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "contacts.full_numbers")) is None


def test_full_numbers_are_shown_when_asked_and_audited(cli: CliRunner, db: Database, wrapped: None) -> None:
    records = json.loads(ok(cli, "campaign", "contacts", "c1", "--full-numbers", "--json").stdout)
    assert [r["phone"] for r in records] == [PHONE, SECOND, THIRD]
    assert "13912345678" in records[1]["note"]
    with db.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "contacts.full_numbers"))
        assert entry is not None and (entry.actor, entry.target, entry.detail["rows"]) == ("cli", "c1", 3)


def test_campaign_contacts_as_text(cli: CliRunner, wrapped: None) -> None:
    lines = ok(cli, "campaign", "contacts", "c1").stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        "138****0001: pending, outcome agent, 1 attempt; wrap-up callback, callback 2024-11-04 15:00 for mei;"
        " note: 下午三点; answers: 接种=是, 年龄=81"
    )
    assert "wrap-up opt_out" in lines[1] and "13912345678" not in lines[1]
    assert cli.invoke(app, ["campaign", "contacts", "nope"]).exit_code == 2


def test_the_export_carries_wrap_ups_and_one_column_per_answer(
    cli: CliRunner, tmp_path: Path, wrapped: None
) -> None:
    out = tmp_path / "out.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(out))
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    header = list(rows[0])
    wrapup_columns = ["disposition", "note", "callback_at (Asia/Shanghai)", "callback_agent"]
    assert header[header.index("row") + 1 : header.index("row") + 5] == wrapup_columns
    assert header[-2:] == ["answer.接种", "answer.年龄"]
    first, second, third = rows
    assert (first["disposition"], first["note"], first["callback_at (Asia/Shanghai)"]) == (
        "callback",
        "下午三点",
        "2024-11-04 15:00",
    )
    assert (first["callback_agent"], first["answer.接种"], first["answer.年龄"]) == ("mei", "是", "81")
    assert (second["disposition"], second["note"]) == ("opt_out", "换号了，新号 13912345678")
    assert (third["disposition"], third["answer.接种"]) == ("", "")
    masked = tmp_path / "masked.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(masked), "--masked")
    assert "13912345678" not in masked.read_text(encoding="utf-8-sig")
