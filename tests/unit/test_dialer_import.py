"""Importing lists end to end on SQLite and PostgreSQL: every row accounted for, each reason shown,
the double import idempotent, do-not-call lists scrubbed, a broken file leaving nothing behind."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select

from core.audit import AuditEntry
from core.db import Database
from core.i18n import use_locale
from dialer import dnc
from dialer.campaigns import CampaignSpec, create_campaign, require_campaign
from dialer.lists.decode import ListFileError
from dialer.lists.export import export_contacts, safe_text
from dialer.lists.importer import import_list, iter_rejects, preview_list
from dialer.models import Contact, ContactState, ImportStatus, ListImport

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

MESSY_ROWS = [
    "2024年第四季度 社区老人回访名单",  # 1 title
    "",  # 2
    "序号,姓名,手机号码（必填）,地址,备注",  # 3 header
    '1,张三,13800138000,"北京市朝阳区, 3号楼\n2单元",',  # 4 accepted (quoted comma and line break)
    "2,李四,138-0013-8001,上海,",  # 5 accepted
    "3,王五,＋８６ １３９００１３９０００,广州,",  # 6 accepted (full-width)
    "4,赵六,13800138000,,same as row 4",  # 7 duplicate
    ",,,,",  # 8 skipped
    '5,钱七,"=HYPERLINK(""http://x.cn"",""13700137001"")",,',  # 9 formula
    "6,孙八,call 13700137000,,",  # 10 invalid
    "7,周九,,,",  # 11 missing
    "8,吴十,+1 650 253 0000,,",  # 12 not_allowed_country
    "9,郑一,13600136000,,",  # 13 dnc (global)
    "10,冯二,13500135000,,",  # 14 dnc (campaign)
    "11,陈三,1.38001E+10,,",  # 15 scientific_notation
    "12,褚四,010-12345678,,",  # 16 accepted landline
    "13,卫五,0755 8888 8888,,",  # 17 accepted landline
    "14,蒋六,13300133000,,",  # 18 duplicate_in_campaign
    "15,沈七,https://example.cn/13800138000,,",  # 19 invalid
]
MESSY = ("\r\n".join(MESSY_ROWS) + "\r\n").encode("gb18030")


@pytest.fixture
def campaign(db: Database) -> str:
    with db.session() as s:
        create_campaign(s, CampaignSpec(name="welfare", elder_welfare=True), actor="mgr")
    return "welfare"


def run(db: Database, data: bytes, name: str = "list.csv", **kw: Any) -> dict[str, Any]:
    return import_list(db, "welfare", io.BytesIO(data), name, actor="mgr", **kw).to_dict()


def seed(db: Database) -> None:
    """A contact from an earlier import and two do-not-call numbers."""
    run(db, "手机\n13300133000\n".encode(), "earlier.csv")
    with db.session() as s:
        dnc.add_numbers(s, ["13600136000"], campaign=None, source="test", reason="opted out", actor="t")
        c = require_campaign(s, "welfare")
        dnc.add_numbers(s, ["135 0013 5000"], campaign=c, source="test", reason=None, actor="t")


def rejects_by_row(db: Database, import_id: int) -> dict[int, tuple[str, int | None, str]]:
    with db.session() as s:
        return {r.row: (r.reason, r.line, r.value) for r in iter_rejects(s, import_id)}


def test_messy_csv_every_reason(db: Database, campaign: str) -> None:
    seed(db)
    report = run(db, MESSY)
    assert (report["rows"], report["accepted"], report["rejected"], report["skipped"]) == (16, 5, 10, 1)
    assert report["reasons"] == {
        "dnc": 2, "invalid": 2, "duplicate": 1, "duplicate_in_campaign": 1, "formula": 1, "missing": 1,
        "not_allowed_country": 1, "scientific_notation": 1,
    }  # fmt: skip
    assert report["encoding"] == "GB18030/GBK" and report["header_row"] == 3 and report["preamble_rows"] == 3
    assert report["columns"]["phone"] == "C (手机号码（必填）)" and report["columns"]["name"] == "B (姓名)"
    rejects = rejects_by_row(db, report["import_id"])
    assert {row: reason for row, (reason, _, _) in rejects.items()} == {
        7: "duplicate", 9: "formula", 10: "invalid", 11: "missing", 12: "not_allowed_country", 13: "dnc",
        14: "dnc", 15: "scientific_notation", 18: "duplicate_in_campaign", 19: "invalid",
    }  # fmt: skip
    # Row 7 of the spreadsheet is line 8 of the text: row 4 holds a line break.
    assert rejects[7][1] == 8 and rejects[10][2] == "call 13700137000"
    with db.session() as s:
        contacts = {
            c.phone_e164: c
            for c in s.scalars(select(Contact).where(Contact.import_id == report["import_id"]))
        }
    assert set(contacts) == {
        "+8613800138000",
        "+8613800138001",
        "+8613900139000",
        "+861012345678",
        "+8675588888888",
    }
    first = contacts["+8613800138000"]
    assert (first.name, first.row_number, first.state, first.attempts) == ("张三", 4, ContactState.pending, 0)
    assert first.fields == {"序号": "1", "地址": "北京市朝阳区, 3号楼\n2单元"}
    assert first.next_due_at is not None and first.timezone is None


def test_double_import_adds_nothing(db: Database, campaign: str) -> None:
    first = run(db, MESSY)
    second = run(db, MESSY)
    assert first["accepted"] == 8 and second["accepted"] == 0
    assert second["rows"] == first["rows"] == second["rejected"] + second["skipped"]
    assert second["reasons"]["duplicate_in_campaign"] == 9  # 8 accepted before + the in-file duplicate
    assert second["already_imported"]["import_id"] == first["import_id"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 8
        jobs = list(s.scalars(select(ListImport).order_by(ListImport.id)))
    assert jobs[0].sha256 == jobs[1].sha256 and jobs[1].accepted == 0


def test_batches_do_not_change_the_result(db: Database, campaign: str) -> None:
    seed(db)
    report = run(db, MESSY, batch_size=2)  # duplicates now span batches: found through the database
    assert (report["accepted"], report["rejected"], report["skipped"]) == (5, 10, 1)
    assert rejects_by_row(db, report["import_id"])[7][0] == "duplicate"


def test_dnc_file_is_added_before_the_scrub(db: Database, campaign: str) -> None:
    dnc_csv = "号码\n13800138000\n138 0013 8001\nnot a number\n".encode()
    report = run(db, MESSY, dnc_stream=io.BytesIO(dnc_csv), dnc_name="optout.csv")
    assert report["dnc_file"]["added"] == 2 and report["dnc_file"]["rejected"] == 1
    assert report["reasons"]["dnc"] == 3  # rows 4, 5 and the duplicate row 7 (DNC is checked first)
    assert report["accepted"] == 6


def test_a_number_put_on_a_list_later_is_not_called(db: Database, campaign: str) -> None:
    run(db, MESSY)
    with db.session() as s:
        result = dnc.add_numbers(
            s, ["+86 138 0013 8000"], campaign=None, source="ivr", reason="pressed 9", actor="t"
        )
    assert (result.added, result.contacts_cancelled) == (1, 1)
    with db.session() as s:
        c = s.scalar(select(Contact).where(Contact.phone_e164 == "+8613800138000"))
        assert c is not None and (c.state, c.last_outcome, c.next_due_at) == (
            ContactState.cancelled,
            "dnc",
            None,
        )
        camp = require_campaign(s, "welfare")
        assert dnc.is_blocked(s, camp.id, "+8613800138000") and not dnc.is_blocked(
            s, camp.id, "+8613800138001"
        )
        assert dnc.remove_number(s, "13800138000", campaign=None, actor="t")
        assert not dnc.remove_number(s, "13800138000", campaign=None, actor="t")


def test_dnc_lists_import_and_list(db: Database, campaign: str) -> None:
    data = "\ufeffPhone,Reason\n13800138000,asked\n+852 2123 4567,foreign is fine\n=1+1,\n\n13800138000,again\n".encode()
    r = dnc.import_file(db, io.BytesIO(data), "dnc.csv", campaign_name=None, actor="t", reason="complaint")
    assert (r.rows, r.added, r.already, r.rejected, r.skipped) == (5, 2, 1, 1, 1)
    with db.session() as s:
        total, entries = dnc.list_entries(s, campaign=None)
        assert total == 2 and {e.phone_e164 for e in entries} == {"+8613800138000", "+85221234567"}
        assert entries[0].reason == "complaint" and entries[0].source == "file:dnc.csv"
        assert dnc.list_entries(s, campaign=None, search="2123")[0] == 1
    with pytest.raises(Exception, match="no campaign named"):
        dnc.import_file(db, io.BytesIO(data), "dnc.csv", campaign_name="nope", actor="t")


def workbook_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "长者关怀名单"
    ws.merge_cells("A1:C1")
    ws.append(["姓名", "联系电话", "社区"])
    ws.append(["张三", 13800138000.0, "东城"])  # a float
    ws.append(["李四", "=B3", "西城"])  # a formula
    ws.append(["王五", 1.3900139e10, "朝阳"])  # scientific notation on screen, exact underneath
    ws.append([None, None, None])
    ws.append(["赵六", 1012345678, "海淀"])
    ws.cell(row=7, column=2).number_format = "00000000000"  # shows 01012345678
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_messy_xlsx(db: Database, campaign: str) -> None:
    report = run(db, workbook_bytes(), "list.xlsx")
    assert (report["rows"], report["accepted"], report["rejected"], report["skipped"]) == (5, 3, 1, 1)
    assert report["reasons"] == {"formula": 1} and report["header_row"] == 2 and report["sheet"] == "Sheet"
    with db.session() as s:
        phones = set(s.scalars(select(Contact.phone_e164)))
    assert phones == {"+8613800138000", "+8613900139000", "+861012345678"}


@pytest.mark.parametrize("after", [100, 3], ids=["mid-file", "near-the-end"])
def test_broken_file_adds_nothing_and_says_where(db: Database, campaign: str, after: int) -> None:
    good = "".join(f"P{i},1380013{i:04d}\n" for i in range(40))
    tail = "".join(f"Q{i},1390013{i:04d}\n" for i in range(after))
    text = "name,phone\n" + good + 'Bad,"13900139000\n' + tail  # an unclosed quote at row 42
    with pytest.raises(ListFileError, match=r"row 42 \(line 42\).*never closed"):
        run(db, text.encode())
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0
        job = s.scalar(select(ListImport))
        assert job is not None and job.status is ImportStatus.failed and "never closed" in (job.error or "")
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "list.import.fail"))


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 64, "old.xls", "Excel 97-2003"),
        (b"name,address\nA,B\nC,D\n", "nophone.csv", "no phone column found"),
        (b"phone\n13800138000\n\xff\xfe\x80 broken", "bad.csv", "cannot read the text"),
    ],
)
def test_bad_files_are_refused_before_anything(
    db: Database, campaign: str, data: bytes, name: str, says: str
) -> None:
    with pytest.raises(ListFileError, match=f"{name}: .*{says}"):
        run(db, data, name)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_preview_masks_and_guesses(db: Database) -> None:
    p = preview_list(io.BytesIO(MESSY), "list.csv")
    assert (p["encoding"], p["header_row"], p["delimiter"]) == ("GB18030/GBK", 3, ",")
    assert [c["field"] for c in p["columns"]] == ["序号", "name", "phone", "地址", "备注"]
    assert p["rows"][0]["phone"] == "138****8000" and "13800138000" not in str(p)
    assert len(p["rows"]) == 5


def test_export_is_safe_and_complete(db: Database, campaign: str, tmp_path) -> None:
    data = '姓名,手机,备注\n=cmd|" /C calc"!A0,13800138000,+1 tip\n@SUM(1),010-12345678,-3\n'.encode()
    run(db, data)
    with db.session() as s:
        c = require_campaign(s, "welfare")
        out = io.StringIO()
        assert export_contacts(s, c, out, "csv", mask=False, actor="mgr", via="test") == 2
        xlsx = tmp_path / "out.xlsx"
        export_contacts(s, c, xlsx, "xlsx", mask=True, actor="sup", via="test")
    rows = list(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    header = rows[0]
    assert header[:3] == ["phone", "name", "state"] and "备注" in header
    by_phone = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert set(by_phone) == {"+8613800138000", "+861012345678"}  # E.164 kept dialable
    assert by_phone["+8613800138000"]["name"] == '\'=cmd|" /C calc"!A0'
    assert by_phone["+8613800138000"]["备注"] == "'+1 tip"
    assert by_phone["+861012345678"]["name"] == "'@SUM(1)" and by_phone["+861012345678"]["备注"] == "-3"
    ws = openpyxl.load_workbook(xlsx).active
    cells = list(ws.iter_rows(min_row=2, values_only=False))
    assert {row[0].value for row in cells} == {"138****8000", "010****5678"}
    assert all(cell.data_type == "s" for row in cells for cell in row if cell.value)
    assert cells[0][0].number_format == "@"
    with db.session() as s:
        audits = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "contacts.export")))
    assert [(a.actor, a.detail["masked"]) for a in audits] == [("mgr", False), ("sup", True)]


def test_export_titles_columns_with_the_lists_own_headers(db: Database, campaign: str) -> None:
    run(db, "姓名,手机,备注\n王秀英,13800138000,腿脚不便\n".encode())
    with db.session() as s, use_locale("zh-CN"):
        out = io.StringIO()
        export_contacts(
            s, require_campaign(s, "welfare"), out, "csv", mask=True, actor="sup", via="test", names=True
        )
    header = next(csv.reader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    assert header[:3] == ["手机", "姓名", "状态"], "phone and name keep the list's headers; ours in Chinese"
    assert "备注" in header and "备注 (2)" in header, "the list's field and our note column both kept"
    assert "phone" not in header and "disposition" not in header


@pytest.mark.parametrize(
    ("value", "safe"),
    [
        ("=1+1", "'=1+1"), ("+86 138", "'+86 138"), ("-cmd", "'-cmd"), ("@x", "'@x"), ("\tx", "'\tx"),
        ("\rx", "'\rx"), ("+8613800138000", "+8613800138000"), ("-3", "-3"), ("+1.5", "+1.5"), ("张三", "张三"),
        (None, ""), (42, "42"),
    ],
)  # fmt: skip
def test_safe_text(value, safe) -> None:
    assert safe_text(value) == safe


def test_time_zone_column_and_extensions(db: Database) -> None:
    with db.session() as s:
        create_campaign(s, CampaignSpec(name="intl", allowed_countries=["CN", "US"]), actor="mgr")
    data = (
        "Name,Phone,Time zone,Note\n"
        "A,13800138000,America/New_York,\n"  # the column wins
        "B,13800138001,Mars/Olympus,\n"  # invalid_timezone
        "C,13800138002,Asia/Shanghai,\n"  # the campaign's own zone: stored as none
        "D,+1 212 555 0100,,\n"  # a US number: its zone from the number
        "E,010-12345678转123,,desk\n"  # the extension kept as a field
    ).encode()
    report = import_list(db, "intl", io.BytesIO(data), "intl.csv", actor="mgr").to_dict()
    assert (report["accepted"], report["reasons"]) == (4, {"invalid_timezone": 1})
    assert report["columns"]["timezone"] == "C (Time zone)"
    with db.session() as s:
        by_phone = {c.phone_e164: c for c in s.scalars(select(Contact))}
    assert by_phone["+8613800138000"].timezone == "America/New_York"
    assert by_phone["+8613800138002"].timezone is None
    assert by_phone["+12125550100"].timezone == "America/New_York"
    assert by_phone["+861012345678"].fields == {"Note": "desk", "extension": "123"}
