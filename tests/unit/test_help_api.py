"""Help in a hard call through the FastAPI app (SQLite and PostgreSQL): the help key stored and
announced to supervisors, the abusive-call flag starting a cool-down that routing respects (no call
offered until it ends, the agent told "您有5分钟休息时间" in Chinese by default), a supervisor's
listen / whisper / join stored and audited even when Asterisk has no such call; bad input refused
with the field named. The ARI side is in test_help_fake_ari.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents import routing
from agents.help import api as help_api
from agents.help import service
from agents.help.models import AgentCooldown, HelpRequest, SupervisorAction
from agents.routing import set_state
from core.audit import AuditEntry
from core.auth.models import Role
from core.auth.service import create_user
from core.db import Database
from core.settings import Settings
from tests.unit.test_wrapup_api import RecordingBus
from tests.utils import login
from tests.utils.agents import AGENT_PASSWORD, make_agents
from warmline.app import create_app

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai
EN = {"Accept-Language": "en"}


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    with db.session() as s:
        create_user(s, "sue", Role.supervisor, AGENT_PASSWORD, actor="test")
        for name in ("mei", "lin"):
            set_state(s, name, "available", "test", since=T0 - timedelta(minutes=5))
    app = create_app(settings, db)
    app.dependency_overrides[help_api.clock] = lambda: lambda: T0
    with TestClient(app) as c:
        app.state.bus = RecordingBus()
        yield c


def sent(client: TestClient) -> list[Any]:
    return list(client.app.state.bus.sent)  # type: ignore[attr-defined]


def test_the_help_key_is_stored_and_alerts_supervisors(client: TestClient, db: Database) -> None:
    mei = login(client, "mei")
    resp = client.post("/api/agents/me/help", headers={**mei, **EN}, json={"call_ref": "att-1"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["call_ref"], body["state"]) == ("att-1", "open")
    assert body["message"] == "Help asked for: a supervisor has been alerted."
    [event] = sent(client)
    assert (event.call_id, event.kind, event.detail["agent"]) == ("att-1", "help", "mei")
    again = client.post("/api/agents/me/help", headers=mei, json={"call_ref": "att-1"}).json()
    assert again["id"] == body["id"], "a second press is the same request"
    assert again["message"] == "已请求帮助：已通知班长。", "Chinese by default"
    with db.session() as s:
        row = s.get(HelpRequest, body["id"])
        assert row is not None and (row.agent, row.kind, row.at) == ("mei", "help", T0)
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.target == "att-1")) == "help.request"

    sue = login(client, "sue")
    board = client.get("/api/supervisor/help", headers=sue).json()
    assert [(r["agent"], r["call_ref"]) for r in board["requests"]] == [("mei", "att-1")]
    assert client.get("/api/supervisor/help", headers=mei).status_code == 403
    assert client.post("/api/agents/me/help", headers=mei, json={"call_ref": ""}).status_code == 422


def test_a_supervisor_action_is_stored_and_audited_even_without_a_call(
    client: TestClient, db: Database
) -> None:
    mei, sue = login(client, "mei"), login(client, "sue")
    client.post("/api/agents/me/help", headers=mei, json={"call_ref": "att-2"})
    resp = client.post(
        "/api/supervisor/calls/att-2/whisper", headers={**sue, **EN}, json={"endpoint": "PJSIP/sue-desk"}
    )
    assert resp.status_code == 409 and resp.json()["detail"]["code"] == "no_call", resp.text
    with db.session() as s:
        row = s.scalar(select(SupervisorAction))
        assert row is not None
        assert (row.supervisor, row.agent, row.action, row.endpoint, row.state) == (
            "sue", "mei", "whisper", "PJSIP/sue-desk", "failed",
        )  # fmt: skip
        assert "supervisor.whisper" in s.scalars(select(AuditEntry.action)).all()
        assert s.scalar(select(HelpRequest.state)) == "answered"

    bad = client.post("/api/supervisor/calls/att-2/listen", headers={**sue, **EN}, json={"endpoint": "x;y"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "endpoint"
    no_phone = client.post("/api/supervisor/calls/att-2/listen", headers={**sue, **EN}, json={})
    assert no_phone.status_code == 422 and no_phone.json()["detail"]["field"] == "endpoint"
    unknown = client.post(
        "/api/supervisor/calls/att-9/join", headers={**sue, **EN}, json={"endpoint": "PJSIP/x"}
    )
    assert unknown.status_code == 404 and unknown.json()["detail"]["field"] == "agent"
    assert client.post("/api/supervisor/calls/att-2/shout", headers=sue, json={}).status_code == 422
    assert client.post("/api/supervisor/calls/att-2/listen", headers=mei, json={}).status_code == 403


def test_an_abusive_call_gives_a_cool_down_that_routing_respects(
    client: TestClient, db: Database, settings: Settings
) -> None:
    mei = login(client, "mei")
    resp = client.post("/api/agents/me/calls/att-3/abusive", headers=mei)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["minutes"] == 5
    assert body["message"] == "您有5分钟休息时间，10:05之前不会为您分配来电。"
    [check_in] = sent(client)
    assert (check_in.kind, check_in.detail["agent"]) == ("check_in", "mei")
    assert client.get("/api/agents/me/cooldown", headers={**mei, **EN}).json()["message"] == (
        "You have 5 minutes' rest. No call will be offered until 10:05."
    )
    with db.session() as s:
        assert s.scalar(select(HelpRequest.kind)) == "abusive"
        cooldown = s.scalar(select(AgentCooldown))
        assert cooldown is not None and (cooldown.reason, cooldown.until) == (
            "abusive",
            T0 + timedelta(minutes=5),
        )
        assert "call.flag_abusive" in s.scalars(select(AuditEntry.action)).all()

        during = routing.candidates(s, now=T0 + timedelta(minutes=4, seconds=59))
        assert {r.agent: r.cooldown_until is not None for r in during} == {"mei": True, "lin": False}
        assert routing.choose_agent(during, "welfare", prefer="mei").agent == "lin"  # type: ignore[union-attr]
        assert routing.choose_agent(during, "welfare", exclude=["lin"]) is None, "mei rests: nobody"
        after = routing.candidates(s, now=T0 + timedelta(minutes=5))
        assert routing.choose_agent(after, "welfare", prefer="mei").agent == "mei"  # type: ignore[union-attr]
    board = client.get("/api/supervisor/help", headers=login(client, "sue")).json()
    assert [c["agent"] for c in board["cooldowns"]] == ["mei"]


def test_reserve_agent_skips_an_agent_in_cool_down(db: Database) -> None:
    make_agents(db, {"mei": []})
    with db.session() as s:
        set_state(s, "mei", "available", "test", since=T0 - timedelta(minutes=1))
        service.start_cooldown(s, "mei", "long_call", T0, 5)
    with db.session() as s:
        assert routing.reserve_agent(s, None, now=T0 + timedelta(minutes=1)) is None
    with db.session() as s:
        chosen = routing.reserve_agent(s, None, now=T0 + timedelta(minutes=6))
        assert chosen is not None and chosen.agent == "mei"
    with pytest.raises(ValueError, match="cool-down reason"), db.session() as s:
        service.start_cooldown(s, "mei", "bored", T0, 5)


def test_no_transfer_reaches_an_agent_in_cool_down(db: Database) -> None:
    from agents.transfer import service as transfers
    from agents.transfer.service import TransferAsk, TransferRefused

    make_agents(db, {"mei": ["welfare"], "lin": ["welfare"]})
    with db.session() as s:
        for name in ("mei", "lin"):
            set_state(s, name, "available", "test", since=T0 - timedelta(minutes=5))
        service.start_cooldown(s, "lin", "abusive", T0, 5)
    with db.session() as s:
        listed = transfers.targets(s, "mei", T0 + timedelta(minutes=1))
        assert listed["colleagues"] == [
            {"name": "lin", "display_name": "lin", "state": "cooldown", "available": False}
        ]
        assert listed["queues"] == [{"skill": "welfare", "available": 0}]
        ask = TransferAsk(agent="mei", call_ref="att-5", kind="agent", target="lin", mode="blind")
        with pytest.raises(TransferRefused) as refused:
            transfers.request_transfer(s, ask, T0 + timedelta(minutes=1))
        assert refused.value.code == "target_busy"
