"""Campaigns, list uploads, reports, exports and do-not-call over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from tests.unit.test_dialer_import import MESSY
from tests.utils import PASSWORD, console_login, login
from warmline.app import create_app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("mgr", Role.manager), ("sup", Role.supervisor), ("agent1", Role.agent)):
            service.create_user(s, name, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as c:
        yield c


def upload(data: bytes, name: str = "名单.csv") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, "text/csv")}


def test_roles(client: TestClient) -> None:
    agent, sup, mgr = login(client, "agent1"), login(client, "sup"), login(client, "mgr")
    assert client.get("/api/campaigns").status_code == 401
    assert client.get("/api/campaigns", headers=agent).status_code == 403
    assert client.get("/api/campaigns", headers=sup).json() == []
    assert client.post("/api/campaigns", headers=sup, json={"name": "x"}).status_code == 403
    assert client.post("/api/campaigns", headers=mgr, json={"name": "x"}).status_code == 201
    assert client.post("/api/campaigns/x/lists", headers=sup, files=upload(MESSY)).status_code == 403
    assert client.get("/api/dnc", headers=agent).status_code == 403


def test_campaign_crud(client: TestClient) -> None:
    mgr, sup = login(client, "mgr"), login(client, "sup")
    made = client.post(
        "/api/campaigns", headers=mgr,
        json={"name": "flu", "kind": "broadcast", "flow": "flu-reminder", "windows": {"mon-fri": ["09:00-12:00"]}},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["windows"]["sat"] == [] and made.json()["amd"] == "leave_message"
    bad = client.post("/api/campaigns", headers=mgr, json={"name": "bad", "kind": "broadcast", "colour": 1})
    assert bad.status_code == 422
    assert bad.json()["detail"]["code"] == "invalid_campaign"
    problems = bad.json()["detail"]["problems"]
    assert any("colour: unknown setting" in p for p in problems)
    no_flow = client.post("/api/campaigns", headers=mgr, json={"name": "bad", "kind": "broadcast"})
    assert no_flow.status_code == 422 and "flow: a broadcast campaign needs" in no_flow.text
    assert client.post("/api/campaigns", headers=mgr, json={"name": "flu"}).status_code == 409
    assert client.get("/api/campaigns/nope", headers=sup).status_code == 404
    patched = client.patch("/api/campaigns/flu", headers=mgr, json={"priority": 9, "daily_cap": 1})
    assert patched.status_code == 200 and patched.json()["priority"] == 9
    assert client.patch("/api/campaigns/flu", headers=mgr, json={"priority": 99}).status_code == 422
    draft = client.post("/api/campaigns/flu/status", headers=sup, json={"status": "running"})
    assert draft.status_code == 403, "a supervisor does not start a draft: a manager does"
    assert draft.json()["detail"]["code"] == "forbidden"
    assert (
        client.post("/api/campaigns/flu/status", headers=mgr, json={"status": "running"}).json()["status"]
        == "running"
    )
    assert client.post("/api/campaigns/flu/status", headers=sup, json={"status": "paused"}).status_code == 200
    assert (
        client.post("/api/campaigns/flu/status", headers=sup, json={"status": "running"}).status_code == 200
    )
    assert client.post("/api/campaigns/flu/status", headers=sup, json={"status": "paused"}).status_code == 200
    assert (
        client.post("/api/campaigns/flu/status", headers=sup, json={"status": "finished"}).status_code == 403
    )
    assert (
        client.post("/api/campaigns/flu/status", headers=mgr, json={"status": "finished"}).status_code == 200
    )
    again = client.post("/api/campaigns/flu/status", headers=mgr, json={"status": "running"})
    assert again.status_code == 422 and again.json()["detail"]["code"] == "campaign_refused"
    assert "is finished" in again.json()["detail"]["message"]
    listed = client.get("/api/campaigns", headers=sup).json()
    assert listed[0]["name"] == "flu" and listed[0]["status"] == "finished"


def test_preview_import_report_and_rejects(client: TestClient, db: Database) -> None:
    mgr, sup = login(client, "mgr"), login(client, "sup")
    client.post("/api/campaigns", headers=mgr, json={"name": "welfare", "elder_welfare": True})
    preview = client.post("/api/campaigns/welfare/lists/preview", headers=mgr, files=upload(MESSY))
    assert preview.status_code == 200, preview.text
    p = preview.json()
    assert (p["encoding"], p["header_row"]) == ("GB18030/GBK", 3)
    assert [c["field"] for c in p["columns"]][:3] == ["序号", "name", "phone"]
    assert "13800138000" not in preview.text  # masked
    imported = client.post(
        "/api/campaigns/welfare/lists",
        headers=mgr,
        files=upload(MESSY),
        data={"mapping": "phone=C,name=B", "header_row": "3"},
    )
    assert imported.status_code == 201, imported.text
    r = imported.json()
    assert (r["rows"], r["accepted"], r["rejected"], r["skipped"]) == (16, 8, 7, 1)
    assert "13700137000" not in imported.text and "137****7000" in imported.text  # rejected cells masked
    again = client.post("/api/campaigns/welfare/lists", headers=mgr, files=upload(MESSY)).json()
    assert again["accepted"] == 0 and again["already_imported"]["import_id"] == r["import_id"]
    shown = client.get(f"/api/imports/{r['import_id']}", headers=sup).json()
    assert shown["accepted"] == 8 and shown["rejects_sample"][0]["row"] == 7
    assert client.get(f"/api/imports/{r['import_id']}/rejects.csv", headers=sup).status_code == 403
    rejects = client.get(f"/api/imports/{r['import_id']}/rejects.csv", headers=mgr)
    assert rejects.status_code == 200 and rejects.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(rejects.content.decode("utf-8-sig"))))
    assert [r_["row"] for r_ in rows] == ["7", "9", "10", "11", "12", "15", "19"]
    assert rows[2]["value"] == "call 13700137000"  # full values for a manager's download
    contacts = client.get("/api/campaigns/welfare/contacts?state=pending&limit=2", headers=sup).json()
    assert contacts["total"] == 8 and contacts["contacts"][0]["phone"] == "138****8000"
    history = client.get("/api/campaigns/welfare/imports", headers=sup).json()
    assert [h["accepted"] for h in history] == [0, 8]
    with db.session() as s:
        actions = set(s.scalars(select(AuditEntry.action)))
    assert {"list.import", "list.rejects.download"} <= actions


@pytest.mark.parametrize(
    ("data", "name", "says"),
    [
        (b"\xd0\xcf\x11\xe0" + b"\x00" * 64, "old.xls", "Excel 97-2003"),
        (b"name,city\nA,B\n", "nophone.csv", "no phone column found"),
        (b"", "empty.csv", "empty"),
    ],
)
def test_bad_uploads(client: TestClient, data: bytes, name: str, says: str) -> None:
    mgr = login(client, "mgr")
    client.post("/api/campaigns", headers=mgr, json={"name": "c1"})
    for path in ("/api/campaigns/c1/lists/preview", "/api/campaigns/c1/lists"):
        resp = client.post(path, headers=mgr, files=upload(data, name))
        detail = resp.json()["detail"]
        assert resp.status_code == 422 and detail["code"] == "bad_list_file"
        assert detail["message"].startswith(f"{name}: ") and says in detail["message"]
    assert client.post("/api/campaigns/nope/lists", headers=mgr, files=upload(MESSY)).status_code == 404
    bad_map = client.post(
        "/api/campaigns/c1/lists", headers=mgr, files=upload(MESSY), data={"mapping": "x=1"}
    )
    assert bad_map.status_code == 422 and "unknown field" in bad_map.text


def test_export_full_for_managers_masked_for_supervisors(client: TestClient, db: Database) -> None:
    mgr, sup = login(client, "mgr"), login(client, "sup")
    client.post("/api/campaigns", headers=mgr, json={"name": "c1"})
    client.post("/api/campaigns/c1/lists", headers=mgr, files=upload(MESSY))
    full = client.get("/api/campaigns/c1/export?format=csv", headers=mgr)
    assert full.status_code == 200 and "+8613800138000" in full.content.decode("utf-8-sig")
    assert 'filename="c1-contacts.csv"' in full.headers["content-disposition"]
    masked = client.get("/api/campaigns/c1/export?format=xlsx", headers=sup)
    assert masked.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(masked.content)).active
    phones = [row[0] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert len(phones) == 8 and "138****8000" in phones and not any(str(p).startswith("+86") for p in phones)
    # Every personal column is masked, not only the number: names, addresses, notes, list fields.
    rows = list(ws.iter_rows(values_only=True))
    header, zhang = list(rows[0]), dict(zip(rows[0], rows[1], strict=True))
    assert zhang["name"] == "张**" and zhang["地址"] == "***" and zhang["state"] == "pending"
    text = " ".join(str(v) for row in rows[1:] for v in row if v is not None)
    assert not any(word in text for word in ("张三", "李四", "朝阳区", "上海")), text
    assert "地址" in header and "name" in header, "the columns are there, their contents withheld"
    full_text = full.content.decode("utf-8-sig")
    assert "张三" in full_text and "朝阳区" in full_text, "a manager's export is whole"
    assert client.get("/api/campaigns/c1/export?format=pdf", headers=mgr).status_code == 422
    with db.session() as s:
        exports = [(e.actor, e.detail["masked"]) for e in s.scalars(
            select(AuditEntry).where(AuditEntry.action == "contacts.export").order_by(AuditEntry.id))]  # fmt: skip
    assert exports == [("mgr", False), ("sup", True)]


def test_dnc_endpoints(client: TestClient) -> None:
    mgr, sup = login(client, "mgr"), login(client, "sup")
    client.post("/api/campaigns", headers=mgr, json={"name": "c1"})
    client.post("/api/campaigns/c1/lists", headers=mgr, files=upload(MESSY))
    opt_out = {"numbers": ["13800138000", "nope"], "reason": "asked, call 13800138000 never"}
    not_global = client.post("/api/dnc", headers=sup, json=opt_out)
    assert not_global.status_code == 403, "the global list is a manager's"
    added = client.post("/api/dnc", headers=mgr, json=opt_out)
    assert added.status_code == 200 and added.json()["added"] == 1 and added.json()["contacts_cancelled"] == 1
    assert client.post("/api/dnc", headers=mgr, json={"numbers": ["nope"]}).status_code == 422
    seen = client.get("/api/dnc", headers=sup).json()["entries"][0]
    assert seen["phone"] == "138****8000" and "13800138000" not in seen["reason"]
    # A supervisor cannot recover the hidden digits by searching part of a number ...
    partial = client.get("/api/dnc", headers=sup, params={"search": "0138"})
    assert partial.status_code == 422 and partial.json()["detail"]["code"] == "search_needs_whole_number"
    # ... only ask whether a whole number they already know is listed.
    assert client.get("/api/dnc", headers=sup, params={"search": "138 0013 8000"}).json()["total"] == 1
    assert client.get("/api/dnc", headers=sup, params={"search": "13800138001"}).json()["total"] == 0
    assert client.get("/api/dnc", headers=mgr, params={"search": "0138"}).json()["total"] == 1
    assert client.get("/api/dnc", headers=mgr).json()["entries"][0]["phone"] == "+8613800138000"
    camp = client.post("/api/dnc", headers=mgr, json={"numbers": ["010-12345678"], "campaign": "c1"}).json()
    assert camp["added"] == 1 and camp["contacts_cancelled"] == 1
    assert client.get("/api/dnc?campaign=c1", headers=mgr).json()["total"] == 1
    assert client.delete("/api/dnc/+8613800138000", headers=sup).status_code == 403
    assert client.delete("/api/dnc/13800138000", headers=mgr).status_code == 200
    assert client.delete("/api/dnc/13800138000", headers=mgr).status_code == 404
    file = {"file": ("dnc.csv", b"phone\n13900139000\n=1+1\n", "text/csv")}
    imported = client.post("/api/dnc/import", headers=mgr, files=file, data={"campaign": "c1"})
    assert imported.status_code == 200 and imported.json()["added"] == 1 and imported.json()["rejected"] == 1
    shown = client.get("/api/campaigns/c1", headers=sup).json()
    assert shown["contacts"]["cancelled"] == 3


def test_console_pages_work_without_javascript(client: TestClient) -> None:
    assert console_login(client, "mgr").status_code == 303
    page = client.get("/console/campaigns")
    assert page.status_code == 200 and "New campaign" in page.text and "No campaigns yet." in page.text
    bad = client.post("/console/campaigns", data={"name": "has space"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text and 'aria-invalid="true"' in bad.text
    made = client.post(
        "/console/campaigns", data={"name": "welfare", "elder_welfare": "1"}, follow_redirects=False
    )
    assert made.status_code == 303 and made.headers["location"] == "/console/campaigns/welfare?created=1"
    detail = client.get("/console/campaigns/welfare?created=1")
    assert "created as a draft" in detail.text and "09:00-11:30, 14:30-17:00" in detail.text
    imported = client.post(
        "/console/campaigns/welfare/import", files=upload(MESSY), data={"mapping": ""}, follow_redirects=False
    )
    assert imported.status_code == 303 and imported.headers["location"].startswith("/console/imports/")
    report = client.get(imported.headers["location"])
    assert "8 accepted, 7 rejected, 1 skipped" in report.text and "scientific_notation" in report.text
    assert "call 137****7000" in report.text and "13700137000" not in report.text
    failed = client.post("/console/campaigns/welfare/import", files=upload(b"a,b\n1,2\n", "x.csv"))
    assert failed.status_code == 422 and "no phone column found" in failed.text
    started = client.post(
        "/console/campaigns/welfare/status", data={"status": "running"}, follow_redirects=False
    )
    assert started.status_code == 303
    assert "is now running" in client.get(started.headers["location"]).text
    opted = client.post("/console/campaigns/welfare/dnc", data={"number": "13800138000"})
    assert "138****8000 added to this campaign" in opted.text and "1 pending contact cancelled" in opted.text
    assert client.post("/console/campaigns/welfare/dnc", data={"number": "abc"}).status_code == 422
    assert client.get("/console/campaigns/nope").status_code == 404
    client.post("/logout")
    console_login(client, "sup")
    watch = client.get("/console/campaigns/welfare")
    assert watch.status_code == 200 and "Import a call list" not in watch.text and "Pause" in watch.text
    client.post("/api/campaigns", headers=login(client, "mgr"), json={"name": "later"})
    draft = client.get("/console/campaigns/later")
    assert draft.status_code == 200 and 'value="running"' not in draft.text, "no Start for a supervisor"
    refused = client.post("/console/campaigns/later/status", data={"status": "running"})
    assert refused.status_code == 403 and "only a manager may make campaign later running" in refused.text
    assert client.post("/console/campaigns", data={"name": "x"}, follow_redirects=False).status_code == 403
    client.post("/logout")
    console_login(client, "agent1")
    assert client.get("/console/campaigns", follow_redirects=False).status_code == 403


def test_status_and_imports_are_published_on_the_bus(settings: Settings, db: Database) -> None:
    """The real Mosquitto: a dialer worker that connects later still reads the retained status."""
    import asyncio
    import json
    import uuid

    import aiomqtt

    from dialer.events import CampaignStatusChanged, ListImported

    settings.asterisk_nodes = []
    settings.topic_prefix = f"wltest-{uuid.uuid4().hex[:10]}"
    with db.session() as s:
        service.create_user(s, "mgr", Role.manager, PASSWORD, actor="test")
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as client:
        mgr = login(client, "mgr")
        client.post("/api/campaigns", headers=mgr, json={"name": "c1"})
        client.post("/api/campaigns/c1/lists", headers=mgr, files=upload(MESSY))
        started = client.post("/api/campaigns/c1/status", headers=mgr, json={"status": "running"}).json()
    assert started["status"] == "running"

    async def retained() -> dict:  # type: ignore[type-arg]
        async with aiomqtt.Client("127.0.0.1", settings.mqtt_port) as mqtt:
            await mqtt.subscribe(CampaignStatusChanged.topic_for(settings.topic_prefix, campaign="c1"))
            async with asyncio.timeout(5):
                async for m in mqtt.messages:
                    assert isinstance(m.payload, bytes | bytearray)
                    data: dict = json.loads(m.payload)  # type: ignore[type-arg]
                    return data
        raise AssertionError("no retained status")

    assert started["published"] is True
    status = asyncio.run(retained())
    assert (status["campaign"], status["status"], status["by"]) == ("c1", "running", "mgr")
    assert ListImported.topic_for(settings.topic_prefix, campaign="c1").endswith("/campaigns/c1/imports")
    with pytest.raises(ValueError, match="phone number"):
        CampaignStatusChanged(campaign="13800138000", status="running", by="x")
