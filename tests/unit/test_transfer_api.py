"""Transfers through the FastAPI app (SQLite and PostgreSQL): whom an agent may hand a call to, a
request stored at once (and audited) for the call's process, its steps, every refusal with its
code, messages in Chinese by default; the dialer's number gate (listed numbers, typed ones only
where the campaign allows them, never do-not-call, never outside the window); and the wrap-up of a
transferred call belonging to the colleague who took it. The calls themselves are in
test_transfer_fake_ari.py and tests/integration/test_transfer_lab.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.routing import set_state
from agents.transfer import api as transfer_api
from agents.transfer import service
from agents.transfer.inbox import take_steps
from agents.transfer.models import Transfer
from agents.transfer.service import TransferAsk, TransferRefused
from core.audit import AuditEntry
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer import dnc
from dialer.agent_dial.transfer_gate import check_transfer_number
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact
from dialer.wrapup import NotYourCall, WrapUpRequest, record_wrapup
from tests.unit.test_wrapup_api import RecordingBus
from tests.utils import login
from tests.utils.agents import make_agents
from tests.utils.cli import CliRunner, ok
from warmline.app import create_app

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai
EN = {"Accept-Language": "en"}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"], "bo": ["census"]})
    with db.session() as s:
        for name in ("mei", "lin"):
            set_state(s, name, "available", "test", since=T0 - timedelta(minutes=5))
    app = create_app(settings, db)
    app.dependency_overrides[transfer_api.clock] = lambda: lambda: T0
    with TestClient(app) as c:
        app.state.bus = RecordingBus()
        yield c


def post(client: TestClient, path: str, who: dict[str, str], lang: dict[str, str] = EN, **body: str) -> Any:
    return client.post(f"/api/agents/me/{path}", headers={**who, **lang}, json=body)


def test_an_agent_sees_whom_to_transfer_to_and_asks_for_it(client: TestClient, db: Database) -> None:
    mei = login(client, "mei")
    targets = client.get("/api/agents/me/transfer-targets", headers=mei).json()
    assert [(c["name"], c["available"]) for c in targets["colleagues"]] == [("lin", True), ("bo", False)]
    assert targets["queues"] == [{"skill": "census", "available": 0}, {"skill": "welfare", "available": 1}]

    resp = post(client, "transfers", mei, call_ref="att-1", kind="agent", target="lin")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["state"], body["mode"], body["from_agent"], body["wrap_up_by"]) == (
        "requested", "attended", "mei", None,
    )  # fmt: skip
    assert body["message"] == "Transfer to lin asked for."
    [event] = client.app.state.bus.sent  # type: ignore[attr-defined]
    assert (event.call_id, event.kind, event.detail["step"], event.detail["target"]) == (
        "att-1", "transfer", "start", "lin",
    ), "announced on the bus once stored"  # fmt: skip
    assert body["published"] is True
    with db.session() as s:
        row = s.get(Transfer, body["id"])
        assert row is not None and row.action == "start", "waiting for the call's process"
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.target == "att-1")) == "transfer.request"

    again = post(client, "transfers", mei, call_ref="att-1", kind="queue", target="welfare")
    assert again.status_code == 409 and again.json()["detail"]["code"] == "transfer_in_progress"
    assert client.get(f"/api/agents/me/transfers/{body['id']}", headers=mei).json()["id"] == body["id"]
    bo = login(client, "bo")
    assert client.get(f"/api/agents/me/transfers/{body['id']}", headers=bo).status_code == 404
    with db.session() as s:
        row = s.get(Transfer, body["id"])
        assert row is not None
        row.rung_agent = "bo"  # the call's process rang bo's phone
    assert client.get(f"/api/agents/me/transfers/{body['id']}", headers=bo).status_code == 200


def test_refusals_name_what_is_wrong(client: TestClient) -> None:
    mei = login(client, "mei")
    cases: list[tuple[dict[str, str], int, str]] = [
        (dict(kind="agent", target="bo"), 409, "target_busy"),
        (dict(kind="agent", target="mei"), 422, "self"),
        (dict(kind="agent", target="nobody"), 404, "unknown_agent"),
        (dict(kind="queue", target="tax"), 404, "unknown_queue"),
        (dict(kind="queue", target="census"), 409, "no_agent"),
    ]
    for body, status, code in cases:
        resp = post(client, "transfers", mei, EN, call_ref="att-2", **body)
        assert (resp.status_code, resp.json()["detail"]["code"]) == (status, code), body
    blind = post(client, "transfers", mei, call_ref="att-2", kind="queue", target="census", mode="blind")
    assert blind.status_code == 202, "a blind transfer to a queue waits there for an agent"
    bad = post(client, "transfers", mei, call_ref="att-3", kind="fax", target="x")
    assert bad.status_code == 422


def test_steps_only_while_consulting_and_messages_in_chinese(client: TestClient, db: Database) -> None:
    mei = login(client, "mei")
    xfer = post(client, "transfers", mei, {}, call_ref="att-4", kind="agent", target="lin").json()
    assert xfer["message"] == "已请求转接给 lin。"
    early = post(client, f"transfers/{xfer['id']}/complete", mei)
    assert (early.status_code, early.json()["detail"]["code"]) == (409, "not_consulting")
    with db.session() as s:
        row = s.get(Transfer, xfer["id"])
        assert row is not None
        row.state, row.action = "consulting", None
    done = post(client, f"transfers/{xfer['id']}/complete", mei, {})
    assert done.status_code == 202 and "lin" in done.json()["message"]
    with db.session() as s:
        assert s.scalar(select(Transfer.action)) == "complete"


# ---------------------------------------------------------------- the dialer's number gate


def campaign(db: Database, **kw: Any) -> int:
    spec = {"name": "w48", "kind": "agent", "mode": "preview", "windows": {"mon-fri": ["09:00-12:00"]}, **kw}
    with db.session() as s:
        c = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        c.status = CampaignStatus.running
        s.flush()
        return c.id


def test_the_gate_allows_listed_numbers_in_the_window_only(db: Database) -> None:
    cid = campaign(db, transfer_numbers={"社区卫生服务中心": "010-6555 0000"})
    with db.session() as s:
        assert check_transfer_number(s, cid, "社区卫生服务中心", T0) == "+861065550000"
        assert check_transfer_number(s, cid, "01065550000", T0) == "+861065550000", "by its number too"
        for wanted, when, code in [
            ("13700000000", T0, "not_allowed"),
            ("社区卫生服务中心", T0 + timedelta(hours=8), "outside_window"),
            ("not a number", T0, "invalid_number"),
        ]:
            with pytest.raises(TransferRefused) as refused:
                check_transfer_number(s, cid, wanted, when)
            assert refused.value.code == code, wanted
        dnc.add_numbers(s, ["+861065550000"], campaign=None, source="test", reason=None, actor="t")
        with pytest.raises(TransferRefused) as blocked:
            check_transfer_number(s, cid, "社区卫生服务中心", T0)
        assert blocked.value.code == "dnc"


def test_typed_numbers_where_the_campaign_allows_them(db: Database) -> None:
    cid = campaign(db, manual_dial=True)
    with db.session() as s:
        assert check_transfer_number(s, cid, "13700000000", T0) == "+8613700000000"


# ---------------------------------------------------------------- the wrap-up is the new agent's


def test_the_wrap_up_of_a_transferred_call_is_the_colleagues(db: Database) -> None:
    make_agents(db, {"mei": [], "lin": []})
    cid = campaign(db)
    with db.session() as s:
        contact = Contact(campaign_id=cid, phone_e164="+8613800000001", fields={})
        s.add(contact)
        s.flush()
        s.add(Attempt(id="att-5", campaign_id=cid, contact_id=contact.id, attempt_no=1, node="n",
                      state=AttemptState.answered, created_at=T0, agent="mei"))  # fmt: skip
        s.add(Transfer(id="x1", call_ref="att-5", from_agent="mei", kind="agent", mode="attended",
                       target="lin", to_agent="lin", state="completed", result="answered",
                       requested_at=T0, ended_at=T0))  # fmt: skip
    with db.session() as s, pytest.raises(NotYourCall):
        record_wrapup(s, WrapUpRequest(call_ref="att-5", agent="mei", disposition="confirmed"), T0)
    with db.session() as s:
        assert (
            record_wrapup(s, WrapUpRequest(call_ref="att-5", agent="lin", disposition="confirmed"), T0).agent
            == "lin"
        )


# ---------------------------------------------------------------- the inbox


def test_the_inbox_takes_a_step_once_and_drops_what_nobody_took(db: Database) -> None:
    make_agents(db, {"mei": [], "lin": []})
    with db.session() as s:
        set_state(s, "lin", "available", "test", since=T0 - timedelta(minutes=1))
    with db.session() as s:
        mine = service.request_transfer(s, TransferAsk("mei", "att-6", "agent", "lin"), T0).id
        gone = service.request_transfer(s, TransferAsk("mei", "att-7", "agent", "lin"), T0).id
    with db.session() as s:
        steps = take_steps(s, ["att-6"], T0 + timedelta(seconds=1))
        assert [(x["id"], x["action"], x["from_agent"]) for x in steps] == [(mine, "start", "mei")]
        assert take_steps(s, ["att-6"], T0 + timedelta(seconds=1)) == [], "taken once"
    with db.session() as s:
        assert take_steps(s, ["att-6"], T0 + timedelta(seconds=5)) == []
        waiting = s.get(Transfer, gone)
        assert waiting is not None and waiting.state == "requested", "still in time for its call's process"
    with db.session() as s:
        take_steps(s, ["att-6"], T0 + timedelta(seconds=20))
    with db.session() as s:
        row = s.get(Transfer, gone)
        assert row is not None and (row.state, row.result, row.action) == ("failed", "not_taken", None)


def test_the_cli_lists_the_transfers(cli: CliRunner, db: Database) -> None:
    with db.session() as s:
        s.add(Transfer(id="x1", call_ref="att-5", from_agent="mei", kind="number", mode="blind",
                       target="138****0000", number="+8613800000000", state="failed", result="dnc",
                       requested_at=T0))  # fmt: skip
        s.add(Transfer(id="x2", call_ref="att-6", from_agent="bo", kind="agent", mode="attended",
                       target="lin", to_agent="lin", state="completed", result="answered",
                       requested_at=T0 + timedelta(minutes=1)))  # fmt: skip
    listed = json.loads(ok(cli, "transfers", "list", "--json").stdout)
    assert [(t["id"], t["state"], t["result"]) for t in listed] == [("x2", "completed", "answered"),
                                                                    ("x1", "failed", "dnc")]  # fmt: skip
    assert "+8613800000000" not in json.dumps(listed), "never the full number"
    mine = json.loads(ok(cli, "transfers", "list", "--agent", "lin", "--json").stdout)
    assert [t["id"] for t in mine] == ["x2"]
    text = ok(cli, "transfers", "list", "--call", "att-5").stdout
    assert "mei → 138****0000" in text and "(dnc)" in text
