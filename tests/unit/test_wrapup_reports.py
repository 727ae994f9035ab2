"""Wrap-ups in `warmline campaign contacts NAME` and in the campaign export, through the real CLI, on
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from agents.transfer.models import Transfer
from core.audit import AuditEntry
from core.db import Database
from dialer.models import Attempt
from dialer.results import CONTACT_KEYS, TRANSFER_KEYS
from tests.unit.test_wrapup import PHONE, T0, hang_up, local, make, taken, wrap
from tests.utils.cli import CliRunner, ok
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
        "transfers": [],
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
        "transfers": [],
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


@pytest.mark.usefixtures("english")
def test_campaign_contacts_as_text(cli: CliRunner, wrapped: None) -> None:
    lines = ok(cli, "campaign", "contacts", "c1").stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(
        "138****0001: pending, outcome agent, 1 attempt; wrap-up callback, callback 2024-11-04 15:00 for mei;"
        " note: 下午三点; answers: 接种=是, 年龄=81"
    )
    assert "wrap-up opt_out" in lines[1] and "13912345678" not in lines[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WARMLINE_LANG", "zh-CN")
        chinese = ok(cli, "campaign", "contacts", "c1").stdout.splitlines()
    assert chinese[0].endswith(
        "1次拨打；话后处理 callback，2024-11-04 15:00 由 mei 回拨；备注：下午三点；答案：接种=是, 年龄=81"
    )
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


@pytest.fixture
def transferred(db: Database, wrapped: None) -> None:
    """The first contact's call: a consult with lin that went back, then a blind transfer to an
    outside number the campaign lists; the second's: handed to the welfare queue."""
    with db.session() as s:
        first, second = s.scalars(select(Attempt.id).order_by(Attempt.contact_id, Attempt.attempt_no)).all()[
            :2
        ]

        def add(tid: str, call: str, kind: str, target: str, minute: int, result: str, **kw: object) -> None:
            s.add(
                Transfer(
                    id=tid, call_ref=call, from_agent="mei", kind=kind, mode="attended", target=target,
                    state="completed" if result == "answered" else "cancelled", result=result,
                    requested_at=T0 + timedelta(minutes=minute), **kw,
                )
            )  # fmt: skip

        add("x1", first, "agent", "lin", 1, "cancelled", rung_agent="lin")
        add("x2", first, "number", "010****0000", 2, "answered", number="01065550000")
        add("x3", second, "queue", "welfare", 6, "answered", to_agent="lin")


@pytest.mark.usefixtures("english")
def test_transfers_in_campaign_contacts_json(cli: CliRunner, transferred: None) -> None:
    records = json.loads(ok(cli, "campaign", "contacts", "c1", "--json").stdout)
    first, second, third = records
    assert all(set(t) == set(TRANSFER_KEYS) for r in records for t in r["transfers"])
    assert first["transfers"] == [
        {"kind": "agent", "target": "lin", "at": "2024-11-04T10:01:00+08:00", "outcome": "cancelled"},
        {"kind": "number", "target": "010****0000", "at": "2024-11-04T10:02:00+08:00", "outcome": "answered"},
    ]
    assert second["transfers"] == [
        {"kind": "queue", "target": "welfare", "at": "2024-11-04T10:06:00+08:00", "outcome": "answered"}
    ]
    assert third["transfers"] == []
    full = json.loads(ok(cli, "campaign", "contacts", "c1", "--full-numbers", "--json").stdout)
    assert full[0]["transfers"][1]["target"] == "01065550000", "full numbers only when asked"
    text = ok(cli, "campaign", "contacts", "c1").stdout.splitlines()
    assert text[0].endswith("; transfers: agent lin (cancelled), number 010****0000 (answered)")


def test_transfers_in_the_export(cli: CliRunner, tmp_path: Path, transferred: None) -> None:
    out = tmp_path / "out.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(out), "--masked")
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    header = list(rows[0])
    assert header[header.index("callback_agent") + 1 : header.index("callback_agent") + 3] == [
        "transfer_count",
        "transfers",
    ]
    assert [r["transfer_count"] for r in rows] == ["2", "1", "0"]
    assert rows[0]["transfers"] == (
        "2024-11-04 10:01 agent lin cancelled; 2024-11-04 10:02 number 010****0000 answered"
    )
    assert rows[1]["transfers"] == "2024-11-04 10:06 queue welfare answered"
    assert "01065550000" not in out.read_text(encoding="utf-8-sig")


def test_export_with_column_names_in_chinese(
    cli: CliRunner, tmp_path: Path, transferred: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMLINE_LANG", "zh-CN")
    out = tmp_path / "names.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(out), "--column-names")
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    header = list(rows[0])
    assert header[:4] == ["电话", "姓名", "状态", "拨打次数"]
    assert "回拨时间（Asia/Shanghai）" in header and "转接次数" in header and "转接" in header
    assert header[-2:] == ["答案：接种", "答案：年龄"]
    assert rows[0]["转接次数"] == "2" and rows[0]["答案：接种"] == "是"
    plain = tmp_path / "codes.csv"
    ok(cli, "lists", "export", "-c", "c1", "--out", str(plain))
    assert next(csv.reader(plain.read_text(encoding="utf-8-sig").splitlines()))[:2] == ["phone", "name"]
