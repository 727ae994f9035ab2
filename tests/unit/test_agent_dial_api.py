"""Agents placing calls through the FastAPI app, on SQLite and PostgreSQL, with the clock the test
sets: preview reservations (never two agents, expiring), skips kept and audited, dial requests
stored as attempts for the dialer, callbacks kept for their agent, typed numbers where allowed, and
every refusal with its code. The calls themselves are placed in test_placed_calls_fake_ari.py and
test_agent_dial_worker_fake_ari.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agents.profiles import update_profile
from agents.routing import set_state
from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer import dnc, wrapup_api
from dialer.agent_dial import service
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState, PreviewSkip
from tests.utils import login
from tests.utils.agents import make_agents
from warmline.app import create_app

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Asia/Shanghai
PHONES = ("+8613800000001", "+8613800000002", "+8613800000003")
EN = {"Accept-Language": "en"}


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def make_campaign(db: Database, name: str = "w48", phones: tuple[str, ...] = PHONES, **kw: Any) -> int:
    spec: dict[str, Any] = {
        "name": name,
        "kind": "agent",
        "mode": "preview",
        "skill": "welfare",
        "windows": {"mon-fri": ["09:00-12:00"]},
        "screen_pop": ["社区", "备用电话"],
        **kw,
    }
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        for n, phone in enumerate(phones, start=1):
            s.add(
                Contact(
                    campaign_id=campaign.id,
                    phone_e164=phone,
                    name=f"客户{n}",
                    fields={"社区": "朝阳", "备用电话": "13912345678", "身份证": "110101194001011234"},
                )
            )
        return campaign.id


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(settings: Settings, db: Database, clock: Clock) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    make_agents(db, {"mei": ["welfare"], "lan": ["welfare"], "bo": []})
    with db.session() as s:
        auth.create_user(s, "sup", Role.supervisor, "correct horse battery", actor="test")
    app = create_app(settings, db)
    app.dependency_overrides[wrapup_api.clock] = lambda: clock
    with TestClient(app) as c:
        yield c


def get(client: TestClient, path: str, who: dict[str, str]) -> Any:
    return client.get(f"/api/agents/me/{path}", headers={**who, **EN})


def post(client: TestClient, path: str, who: dict[str, str], **body: Any) -> Any:
    return client.post(f"/api/agents/me/{path}", headers={**who, **EN}, json=body)


def refusal(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    detail: dict[str, Any] = resp.json()["detail"]
    assert detail["code"] == code, detail
    return detail


def the_contact(db: Database, contact_id: int) -> Contact:
    with db.session() as s:
        found = s.get(Contact, contact_id)
        assert found is not None
        return found


# ---------------------------------------------------------------- preview


def test_preview_reserves_a_contact_to_one_agent_until_it_expires(
    client: TestClient, db: Database, clock: Clock
) -> None:
    make_campaign(db)
    mei, lan, bo = login(client, "mei"), login(client, "lan"), login(client, "bo")
    first = get(client, "preview", mei).json()["contact"]
    assert first["campaign"] == "w48" and first["name"] == "客户1"
    assert first["phone"] == "138****0001", "masked: agents never see the number"
    assert first["fields"] == {"社区": "朝阳", "备用电话": "139****5678"}, (
        "only the columns the screen pop names, numbers in them masked; never the ID card column"
    )
    assert first["reserved_until"] == (T0 + timedelta(minutes=3)).isoformat()
    assert get(client, "preview", mei).json()["contact"]["contact_id"] == first["contact_id"], (
        "asking again: the same"
    )
    second = get(client, "preview", lan).json()["contact"]
    assert second["contact_id"] != first["contact_id"], "never the same contact for two agents"
    nothing = get(client, "preview", bo).json()
    assert nothing["contact"] is None and "Nobody is due" in nothing["message"], (
        "bo lacks the campaign's skill"
    )

    with db.session() as s:
        shown = [
            (a.actor, a.target)
            for a in s.scalars(select(AuditEntry).where(AuditEntry.action == "preview.show"))
        ]
    assert shown == [("mei", str(first["contact_id"])), ("lan", str(second["contact_id"]))], "once each"
    clock.advance(minutes=4)  # both reservations have run out
    after = get(client, "preview", lan).json()["contact"]
    assert after["contact_id"] == first["contact_id"], "mei's expired reservation is free for others"


def test_two_agents_asking_at_once_never_get_the_same_contact(settings: Settings, db: Database) -> None:
    make_agents(db, {"mei": ["welfare"], "lan": ["welfare"]})
    make_campaign(db, phones=PHONES[:1])
    got: dict[str, Any] = {}
    start = threading.Barrier(2)

    def ask(name: str) -> None:
        with db.session() as s:
            desk = service.desk_of(s, name)
            start.wait()
            found = service.next_preview(s, desk, T0)
            got[name] = found.contact_id if found else None

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("mei", "lan")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got.values(), key=lambda v: v is None)[1] is None and any(got.values()), got


def test_a_skip_is_kept_audited_and_the_contact_goes_to_the_others(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei, lan = login(client, "mei"), login(client, "lan")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    bad = post(client, "preview/skip", mei, contact_id=shown, reason="bored")
    assert refusal(bad, 422, "invalid_reason")["field"] == "reason"
    refusal(post(client, "preview/skip", lan, contact_id=shown, reason="not_now"), 403, "not_reserved")
    ok = post(client, "preview/skip", mei, contact_id=shown, reason="known", note="我的邻居 13800001111")
    assert ok.status_code == 200 and ok.json()["skipped"] is True
    with db.session() as s:
        [skip] = s.scalars(select(PreviewSkip)).all()
        assert (skip.agent, skip.reason, skip.note) == ("mei", "known", "我的邻居 138****1111")
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "preview.skip"))
        assert entry is not None and entry.actor == "mei" and entry.detail["reason"] == "known"
    assert get(client, "preview", mei).json()["contact"]["contact_id"] != shown, (
        "not shown to mei again today"
    )
    assert get(client, "preview", lan).json()["contact"]["contact_id"] == shown, "lan may take it"


# ---------------------------------------------------------------- dial


def test_dialling_a_reserved_contact_stores_the_attempt_for_the_dialer(
    client: TestClient, db: Database
) -> None:
    make_campaign(db)
    mei, lan = login(client, "mei"), login(client, "lan")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    resp = post(client, "dial", mei, contact_id=shown)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert (body["kind"], body["contact_id"], body["phone"]) == ("preview", shown, "138****0001")
    with db.session() as s:
        attempt = s.get(Attempt, body["call_ref"])
        assert attempt is not None
        assert (attempt.state, attempt.node, attempt.agent, attempt.attempt_no) == (
            AttemptState.created,
            "",
            "mei",
            1,
        )
        assert attempt.detail["placed"] == {"by": "mei", "kind": "preview"}
        assert (
            s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "call.place"))
            == 1
        )
    contact = the_contact(db, shown)
    assert (contact.state, contact.reserved_by) == (ContactState.in_progress, None)
    refusal(post(client, "dial", mei, contact_id=shown), 409, "already_dialing")
    refusal(post(client, "dial", lan, contact_id=shown), 409, "contact_busy")
    calls = get(client, "calls", mei).json()
    assert calls == [
        {"call_ref": body["call_ref"], "contact_id": shown, "campaign": "w48",
         "started_at": T0.isoformat(), "wrapped_up": False}
    ]  # fmt: skip


def test_a_contact_not_reserved_to_me_is_refused(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei, lan, bo = login(client, "mei"), login(client, "lan"), login(client, "bo")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    refusal(post(client, "dial", lan, contact_id=shown), 403, "not_reserved")
    refusal(post(client, "dial", bo, contact_id=shown), 403, "not_eligible")
    refusal(post(client, "dial", mei, contact_id=999_999), 404, "unknown_contact")
    bad = client.post("/api/agents/me/dial", headers=mei, json={})
    assert bad.status_code == 422
    sup = login(client, "sup")
    assert client.post("/api/agents/me/dial", headers=sup, json={"contact_id": shown}).status_code == 403


def test_a_contact_on_do_not_call_is_refused_with_the_reason(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]
    with db.session() as s:
        dnc.add_numbers(s, [PHONES[0]], campaign=None, source="test", reason="opted out", actor="t")
    detail = refusal(post(client, "dial", mei, contact_id=shown["contact_id"]), 409, "do_not_call")
    assert "138****0001" in detail["message"] and "do-not-call" in detail["message"]
    assert PHONES[0][3:] not in detail["message"], "never the full number"
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Attempt)) == 0, "nothing dialled"


def test_outside_the_calling_window_the_refusal_says_when_it_opens(
    client: TestClient, db: Database, clock: Clock
) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    clock.at = T0 + timedelta(hours=2, minutes=30)  # 12:30 in Shanghai: the window closed at 12:00
    detail = refusal(post(client, "dial", mei, contact_id=shown), 409, "outside_window")
    assert detail["opens_at"] == datetime(2026, 3, 3, 1, 0, tzinfo=UTC).isoformat()  # Tuesday 09:00
    assert "2026-03-03 09:00 (Asia/Shanghai)" in detail["message"]
    assert the_contact(db, shown).state is ContactState.pending, "nothing was taken"


def test_the_call_limit_is_kept(client: TestClient, db: Database, clock: Clock) -> None:
    make_campaign(db, daily_cap=1, rolling_cap=1)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    with db.session() as s:
        s.add(Attempt(id="earlier", campaign_id=the_contact(db, shown).campaign_id, contact_id=shown, attempt_no=1,
                      node="lab", state=AttemptState.ended, created_at=T0 - timedelta(hours=1), detail={}))  # fmt: skip
        s.get(Contact, shown).attempts = 1  # type: ignore[union-attr]
    detail = refusal(post(client, "dial", mei, contact_id=shown), 409, "call_limit")
    assert detail["allowed_at"] is not None


def test_a_request_no_dialer_takes_is_dropped_and_the_contact_is_mine_again(
    client: TestClient, db: Database, clock: Clock
) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    first = post(client, "dial", mei, contact_id=shown).json()["call_ref"]
    clock.advance(seconds=45)
    again = post(client, "dial", mei, contact_id=shown)
    assert again.status_code == 202, again.text
    with db.session() as s:
        assert s.get(Attempt, first) is None, "the untaken request is gone: nothing was dialled"
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "call.not_placed")) is not None


def test_on_a_call_no_new_call_is_placed(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    with db.session() as s:
        set_state(s, "mei", "on_call", "routed", since=T0)
    refusal(post(client, "dial", mei, contact_id=shown), 409, "on_call")


# ---------------------------------------------------------------- callbacks


def _callback_for_mei(client: TestClient, db: Database, clock: Clock, contact_id: int) -> str:
    """mei called the contact, talked, and promised a callback in two minutes."""
    mei = login(client, "mei")
    call_ref = str(post(client, "dial", mei, contact_id=contact_id).json()["call_ref"])
    with db.session() as s:
        attempt = s.get(Attempt, call_ref)
        assert attempt is not None
        attempt.node, attempt.state, attempt.answered_at, attempt.ended_at = "lab", AttemptState.ended, T0, T0
        attempt.outcome = "agent"
        contact = s.get(Contact, contact_id)
        assert contact is not None
        contact.state, contact.attempts = ContactState.done, 1
    due = (clock() + timedelta(minutes=2)).isoformat()
    resp = client.post(
        "/api/agents/me/wrapup",
        headers=mei,
        json={"call_ref": call_ref, "disposition": "callback", "callback_at": due},
    )
    assert resp.status_code == 200, resp.text
    return call_ref


def test_a_callback_is_mine_listed_and_dialled_when_due(
    client: TestClient, db: Database, clock: Clock
) -> None:
    make_campaign(db, phones=PHONES[:2])
    mei, lan = login(client, "mei"), login(client, "lan")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    call_ref = _callback_for_mei(client, db, clock, shown)
    [item] = get(client, "callbacks", mei).json()
    assert (item["contact_id"], item["due"], item["phone"], item["campaign"]) == (
        shown,
        False,
        "138****0001",
        "w48",
    )
    assert item["callback_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert get(client, "callbacks", lan).json() == []
    refusal(post(client, "dial", mei, contact_id=shown), 409, "not_due")
    assert [c["wrapped_up"] for c in get(client, "calls", mei).json()] == [True]

    clock.advance(minutes=2)
    assert get(client, "callbacks", mei).json()[0]["due"] is True
    other = get(client, "preview", lan).json()["contact"]
    assert other is None or other["contact_id"] != shown, "kept for mei during its grace"
    refusal(post(client, "dial", lan, contact_id=shown), 403, "not_reserved")
    mine = get(client, "preview", mei).json()["contact"]
    assert mine["contact_id"] == shown and mine["callback_at"] is not None, "my due callback comes first"
    resp = post(client, "dial", mei, contact_id=shown)
    assert resp.status_code == 202 and resp.json()["kind"] == "callback"
    assert resp.json()["call_ref"] != call_ref


# ---------------------------------------------------------------- typed numbers


def test_typed_numbers_only_where_the_agent_and_the_campaign_allow_it(
    client: TestClient, db: Database
) -> None:
    make_campaign(db, name="closed-list")
    make_campaign(db, name="open-line", phones=(), manual_dial=True)
    mei = login(client, "mei")
    typed = {"number": "139 0000 0009", "campaign": "open-line"}
    refusal(post(client, "dial", mei, **typed), 403, "manual_dial_not_allowed")
    with db.session() as s:
        update_profile(s, "mei", actor="sup", manual_dial=True)
    refusal(
        post(client, "dial", mei, number="13900000009", campaign="closed-list"),
        403,
        "manual_dial_not_allowed",
    )
    refusal(post(client, "dial", mei, number="13900000009", campaign="nowhere"), 404, "unknown_campaign")
    assert (
        refusal(post(client, "dial", mei, number="12", campaign="open-line"), 422, "invalid_number")["field"]
        == "number"
    )
    resp = post(client, "dial", mei, **typed)
    assert resp.status_code == 202, resp.text
    assert (resp.json()["kind"], resp.json()["phone"]) == ("manual", "139****0009")
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.phone_e164 == "+8613900000009"))
        assert contact is not None and contact.state is ContactState.in_progress
        dnc.add_numbers(s, ["13900000010"], campaign=None, source="test", reason=None, actor="t")
    s_resp = post(client, "dial", mei, number="13900000010", campaign="open-line")
    # mei's first call is still being placed: that is said first
    refusal(s_resp, 409, "already_dialing")


def test_a_typed_number_on_do_not_call_is_refused(client: TestClient, db: Database) -> None:
    make_campaign(db, name="open-line", phones=(), manual_dial=True)
    with db.session() as s:
        update_profile(s, "mei", actor="sup", manual_dial=True)
        dnc.add_numbers(s, ["13900000010"], campaign=None, source="test", reason=None, actor="t")
    mei = login(client, "mei")
    refusal(post(client, "dial", mei, number="139-0000-0010", campaign="open-line"), 409, "do_not_call")


def test_a_campaign_that_is_not_running_places_nothing(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    with db.session() as s:
        svc.set_status(s, "w48", CampaignStatus.paused, actor="t")
    refusal(post(client, "dial", mei, contact_id=shown), 409, "campaign_not_running")
    assert get(client, "preview", mei).json()["contact"] is None


# ---------------------------------------------------------------- language


def test_refusals_speak_the_agents_language(client: TestClient, db: Database) -> None:
    make_campaign(db)
    mei = login(client, "mei")
    shown = get(client, "preview", mei).json()["contact"]["contact_id"]
    lan = login(client, "lan")
    zh = client.post("/api/agents/me/dial", headers=lan, json={"contact_id": shown})
    en = client.post("/api/agents/me/dial", headers={**lan, **EN}, json={"contact_id": shown})
    assert zh.json()["detail"]["code"] == en.json()["detail"]["code"] == "not_reserved"
    assert en.json()["detail"]["message"].startswith("This contact is not shown to you")
    assert zh.json()["detail"]["message"] != en.json()["detail"]["message"], "zh-CN unless asked otherwise"
