"""The agent's desk and the case records through the FastAPI app, on SQLite and PostgreSQL: a
campaign call's script (Chinese columns, only what the script and the pop need) and form fetched
with the call's ticket; answers refused naming the question while the rest is kept; answers in
the wrap-up, the export and `campaign contacts --json`; a 12345 case saved from an inbound call,
listed for supervisors until closed by the API or `warmline cases close` (audited)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.call_tickets import mint, ticket_secret
from core.db import Database
from core.i18n import use_locale
from core.settings import Settings, get_settings
from dialer import campaigns as svc
from dialer import wrapup_api
from dialer.models import Attempt, Contact
from dialer.results import contact_records
from hotline.models import Case
from tests.unit.test_forms_scripts import FORM_YAML
from tests.unit.test_wrapup import PHONE, T0, hang_up, make, taken
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner
from warmline.app import create_app
from warmline.cli import app as cli_app

REPO = Path(__file__).resolve().parents[2]
NOW = T0 + timedelta(minutes=5)
SCRIPT = "# 开场白\n{姓名}您好，我是{agent}，{社区}社区的工作人员。\n\n## 核对\n请问您今年多大年纪？"
LINE = "community-hotline"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    inbound = settings.var_dir / "inbound"
    inbound.mkdir(parents=True)
    for name in ("hotline.yaml", "12345-case.script.md"):
        shutil.copy(REPO / "config" / "inbound" / name, inbound / name)
    settings.inbound_config = inbound / "hotline.yaml"
    with db.session() as s:
        for name, role in (("mei", Role.agent), ("lan", Role.agent), ("sup", Role.supervisor)):
            service.create_user(s, name, role, PASSWORD, actor="test")
    app = create_app(settings, db)
    app.dependency_overrides[wrapup_api.clock] = lambda: lambda: NOW
    with TestClient(app) as c:
        yield c


def form_campaign(db: Database) -> str:
    """Campaign c1 with FORM_YAML's form and a script; its contact called and not yet taken."""
    data, _lines = svc.read_settings(FORM_YAML)
    make(db, script=SCRIPT, form=data["form"])
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.phone_e164 == PHONE))
        assert contact is not None
        contact.fields = {"社区": "朝阳", "身份证号": "110101194501011234"}
    return taken(db)


def ticket(
    settings: Settings,
    call_ref: str,
    agent: str = "mei",
    campaign: str | None = None,
    line: str | None = None,
) -> dict[str, str]:
    secret = ticket_secret(settings.var_dir)
    made = mint(secret, call_ref=call_ref, agent=agent, now=NOW, campaign=campaign, line=line)
    return {"X-Warmline-Ticket": made}


def test_script_and_form_of_a_campaign_call(client: TestClient, db: Database, settings: Settings) -> None:
    with db.session() as s:  # ringing: the hand-over has not noted the agent yet
        aid = form_campaign(db)
        s.get(Attempt, aid).agent = None  # type: ignore[union-attr]
    mei, lan = login(client, "mei"), login(client, "lan")
    path = f"/api/agents/me/calls/{aid}/script"
    assert client.get(path, headers=mei).status_code == 403, "no ticket, not yet the agent's"
    assert client.get(path, headers=lan | ticket(settings, aid)).status_code == 403, "mei's ticket"
    assert client.get("/api/agents/me/calls/nope/script", headers=mei).status_code == 404
    resp = client.get(path, headers=mei | ticket(settings, aid, campaign="c1"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["campaign"] == "c1" and body["fields"] == {"社区": "朝阳"}, "only what the script uses"
    assert "<h2>开场白</h2>" in body["script_html"] and "王奶奶您好，我是mei，朝阳社区" in body["script_html"]
    assert "110101" not in resp.text, "a column the script does not use never leaves the server"
    assert [q["key"] for q in body["form"]["questions"]] == ["reached", "age", "visit_on", "note"]


def test_bad_answers_are_named_and_the_rest_kept(
    client: TestClient, db: Database, settings: Settings
) -> None:
    aid = form_campaign(db)
    mei = login(client, "mei")  # took the call: no ticket needed any more
    path = f"/api/agents/me/calls/{aid}/form"
    with use_locale("zh_CN"):
        bad = client.put(path, headers=mei, json={"answers": {"reached": "yes", "age": "130"}})
    assert bad.status_code == 422
    [err] = bad.json()["detail"]
    assert err["loc"] == ["body", "answers", "age"] and err["msg"].startswith("年龄")
    assert "120" in err["msg"] and bad.json()["kept"] == {"reached": "yes"}
    script = client.get(f"/api/agents/me/calls/{aid}/script", headers=mei).json()
    assert script["answers"] == {"reached": "yes"}, "the draft is kept on the server"
    missing = client.put(path, headers=mei, json={"answers": {"reached": "yes"}, "complete": True})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "age"
    good = client.put(path, headers=mei, json={"answers": {"reached": "yes", "age": "81", "note": "好"}})
    assert good.status_code == 200 and good.json()["answers"] == {"reached": "yes", "age": 81, "note": "好"}
    with db.session() as s:
        stored = s.get(Attempt, aid)
        assert stored is not None and stored.answers == {"reached": "yes", "age": 81, "note": "好"}


def test_answers_with_the_wrap_up_reach_the_export_and_the_contacts(
    client: TestClient, db: Database, settings: Settings
) -> None:
    aid = form_campaign(db)
    hang_up(db, aid, T0 + timedelta(minutes=4))
    mei = login(client, "mei")
    wrap = {"call_ref": aid, "disposition": "confirmed"}
    bad = client.post("/api/agents/me/wrapup", headers=mei, json=wrap | {"answers": {"reached": "maybe"}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "answers", "reached"]
    with db.session() as s:
        assert s.get(Attempt, aid).wrapped_up_at is None  # type: ignore[union-attr]
    answers = {"reached": "yes", "age": "81", "visit_on": "2026-03-01"}
    ok = client.post("/api/agents/me/wrapup", headers=mei, json=wrap | {"answers": answers})
    assert ok.status_code == 200, ok.text
    again = client.post("/api/agents/me/wrapup", headers=mei, json=wrap | {"answers": answers})
    assert again.status_code == 200 and again.json()["already"] is True, "a retry with the same answers"
    with db.session() as s:
        service.create_user(s, "boss", Role.manager, PASSWORD, actor="test")
    export = client.get("/api/campaigns/c1/export?format=csv", headers=login(client, "boss"))
    assert export.status_code == 200, export.text
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [k for k in rows[0] if k.startswith("answer.")] == [
        "answer.reached", "answer.age", "answer.visit_on", "answer.note",
    ], "one column per question, in the form's order"  # fmt: skip
    assert (rows[0]["answer.reached"], rows[0]["answer.age"], rows[0]["answer.note"]) == ("yes", "81", "")
    with db.session() as s:  # and `warmline campaign contacts c1 --json`
        [record] = contact_records(s, svc.require_campaign(s, "c1"))
    assert record["answers"] == {"reached": "yes", "age": 81, "visit_on": "2026-03-01"}
    assert record["disposition"] == "confirmed"


def test_ivr_keypad_answers_are_exported(client: TestClient, db: Database) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=4))
    with db.session() as s:  # what the IVR runner stores: each gather node's accepted entry
        attempt = s.get(Attempt, aid)
        assert attempt is not None
        attempt.flow_outcome = "confirmed"
        attempt.detail = {**attempt.detail, "flow": {"path": ["ask"], "digits": {"ask": "1", "age": "72"}}}
    with db.session() as s:
        service.create_user(s, "boss", Role.manager, PASSWORD, actor="test")
    export = client.get("/api/campaigns/c1/export?format=csv", headers=login(client, "boss"))
    [row] = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert (row["ivr.ask"], row["ivr.age"]) == ("1", "72")


def test_a_case_from_the_hotline_listed_until_closed(
    client: TestClient, db: Database, settings: Settings, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mei, sup = login(client, "mei"), login(client, "sup")
    call = "inbound-channel-1"
    path = f"/api/agents/me/calls/{call}"
    assert client.get(f"{path}/script", headers=mei).status_code == 404
    pass_ = ticket(settings, call, line=LINE)
    view = client.get(f"{path}/script", headers=mei | pass_).json()
    assert view["line"] == LINE and "<h2>开场白</h2>" in view["script_html"]
    assert view["form"]["record"] == "case"
    case = {"category": "complaint", "summary": "小区路灯不亮，电话13800138000", "status": "handed_off"}
    missing = client.put(f"{path}/form", headers=mei | pass_, json={"answers": case})
    assert missing.status_code == 422
    assert {e["loc"][-1] for e in missing.json()["detail"]} == {"department", "follow_up_date"}
    case |= {"department": "housing", "follow_up_date": "2024-11-08"}
    saved = client.put(f"{path}/form", headers=mei | pass_, json={"answers": case})
    assert saved.status_code == 200 and saved.json()["case_id"], saved.text
    case_id = saved.json()["case_id"]

    assert client.get("/api/cases", headers=mei).status_code == 403, "supervisors' list"
    [listed] = client.get("/api/cases?open=true", headers=sup).json()["cases"]
    assert (listed["id"], listed["status"], listed["department"]) == (case_id, "handed_off", "housing")
    assert listed["labels"] == {"category": "投诉", "department": "住建局", "status": "已转办"}
    assert "13800138000" not in listed["summary"] and "138****8000" in listed["summary"]
    assert listed["follow_up_on"] == "2024-11-08" and listed["overdue"] is False

    closed = client.post(f"/api/cases/{case_id}/close", headers=sup, json={"note": "已修复"})
    assert closed.status_code == 200 and closed.json()["closed_by"] == "sup"
    assert client.post(f"/api/cases/{case_id}/close", headers=sup, json={}).status_code == 409
    assert client.get("/api/cases?open=true", headers=sup).json()["cases"] == []
    assert len(client.get("/api/cases", headers=sup).json()["cases"]) == 1
    again = client.put(f"{path}/form", headers=mei | pass_, json={"answers": case})
    assert again.status_code == 409, "a closed case no longer changes"

    # the command line: a second case, listed with --open, closed and audited
    second = client.put(
        "/api/agents/me/calls/inbound-channel-2/form",
        headers=mei | ticket(settings, "inbound-channel-2", line=LINE),
        json={"answers": case | {"status": "pending"}},
    ).json()["case_id"]
    monkeypatch.setenv("WARMLINE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("WARMLINE_DATABASE_URL", db_url)
    monkeypatch.setenv("WARMLINE_INBOUND_CONFIG", str(settings.inbound_config))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed_cli = runner.invoke(cli_app, ["cases", "list", "--open", "--json"])
        assert listed_cli.exit_code == 0, listed_cli.output
        assert [c["id"] for c in json.loads(listed_cli.stdout)] == [second]
        done = runner.invoke(cli_app, ["cases", "close", str(second), "--note", "已答复"])
        assert done.exit_code == 0, done.output
        twice = runner.invoke(cli_app, ["cases", "close", str(second)])
        assert twice.exit_code == 2 and "cli" in twice.output, "says who closed it"
    finally:
        get_settings.cache_clear()
    with db.session() as s:
        actions = [e.action for e in s.scalars(select(AuditEntry).where(AuditEntry.action.like("case.%")))]
        assert actions.count("case.close") == 2 and actions.count("case.create") == 2
        assert s.scalar(select(Case).where(Case.id == second)).closed_by == "cli"  # type: ignore[union-attr]
