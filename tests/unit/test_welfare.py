"""Elder-welfare alerts: the state machine and its audit trail on SQLite and PostgreSQL, the API
and its roles, the notice through the outbox (the alert row, announced after its commit, never on
rollback, once however many notifiers run, and still after a crash between commit and notice), and
the webhook's retries against a real local HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.messages import BusMessage, WelfareAlert
from core.settings import Settings
from dialer import campaigns
from dialer.models import Campaign, Contact
from dialer.welfare import events, service
from dialer.welfare.models import Alert, AlertState
from tests.utils import PASSWORD, login, until
from warmline.app import create_app

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")


def seed(db: Database) -> tuple[int, int]:
    with db.session() as s:
        campaign = campaigns.create_campaign(
            s, campaigns.build_spec({"name": "elder-w48", "kind": "broadcast", "flow": "elder_welfare_check",
                                     "elder_welfare": True}), actor="test",
        )  # fmt: skip
        contact = Contact(campaign_id=campaign.id, phone_e164="+8613800138000", name="王奶奶", fields={})
        s.add(contact)
        s.flush()
        return campaign.id, contact.id


def raise_one(db: Database, ids: tuple[int, int], kind: str = "unreached", attempt: str = "att-1") -> int:
    with db.session() as s:
        alert = service.raise_alert(
            s, campaign=s.get(Campaign, ids[0]), contact=s.get(Contact, ids[1]), attempt_id=attempt,
            kind=kind, detail={"attempts": 3, "phone": "+8613800138000"},
        )  # fmt: skip
        return alert.id


def test_raise_is_idempotent_while_unresolved_and_audited(db: Database) -> None:
    ids = seed(db)
    first = raise_one(db, ids)
    assert raise_one(db, ids, attempt="att-2") == first, "same contact and kind while open: the same alert"
    help_alert = raise_one(db, ids, kind="help")
    assert help_alert != first, "another kind is another alert"
    with db.session() as s:
        alert = s.get(Alert, first)
        assert alert is not None
        assert alert.state is AlertState.open and alert.phone_masked == "138****8000"
        assert alert.detail["phone"] == "138****8000", "a number in the detail is masked too"
        assert alert.campaign_name == "elder-w48" and alert.contact_name == "王奶奶"
        assert "13800138000" not in json.dumps(service.describe(alert), ensure_ascii=False)
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions.count("welfare.alert.raise") == 2


def test_acknowledge_then_resolve_then_a_new_alert(db: Database) -> None:
    ids = seed(db)
    alert_id = raise_one(db, ids)
    with db.session() as s:
        with pytest.raises(service.AlertError, match="resolution note is required"):
            service.resolve(s, alert_id, actor="sup", resolution="  ")
        service.acknowledge(s, alert_id, actor="sup", note="calling her daughter")
        service.acknowledge(s, alert_id, actor="sup2")  # a second acknowledge changes nothing
    with db.session() as s:
        alert = service.get_alert(s, alert_id)
        assert alert.state is AlertState.acknowledged and alert.acknowledged_by == "sup"
        service.resolve(s, alert_id, actor="sup", resolution="Daughter visited; she is well.")
    with db.session() as s:
        alert = service.get_alert(s, alert_id)
        assert alert.state is AlertState.resolved and alert.resolved_by == "sup"
        assert alert.resolved_at is not None and alert.acknowledged_at is not None
        assert alert.resolved_at >= alert.acknowledged_at >= alert.created_at
        with pytest.raises(service.AlertError, match="already resolved"):
            service.acknowledge(s, alert_id, actor="sup")
        with pytest.raises(service.AlertError, match="already resolved"):
            service.resolve(s, alert_id, actor="sup", resolution="again")
        with pytest.raises(service.AlertNotFound):
            service.acknowledge(s, 999_999, actor="sup")
        trail = [(e.actor, e.action) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert trail[-3:] == [
            ("dialer", "welfare.alert.raise"),
            ("sup", "welfare.alert.acknowledge"),
            ("sup", "welfare.alert.resolve"),
        ]
    assert raise_one(db, ids) != alert_id, "once resolved, the same contact can raise a new alert"
    with db.session() as s:
        assert service.counts(s) == {"open": 1, "acknowledged": 0, "resolved": 1}


def test_open_straight_to_resolved(db: Database) -> None:
    alert_id = raise_one(db, seed(db), kind="help")
    with db.session() as s:
        alert = service.resolve(s, alert_id, actor="sup", resolution="Agent took the call; sent a nurse.")
        assert alert.acknowledged_by == "sup", "resolving implies having seen it"


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[BusMessage] = []

    async def publish(self, message: BusMessage) -> bool:
        self.sent.append(message)
        return True


def test_committed_alert_reaches_the_bus_when_woken_never_on_rollback(
    db: Database, settings: Settings
) -> None:
    ids = seed(db)
    bus = FakeBus()

    def commit_and_wake() -> int:  # as the engine does: commit in a worker thread, then wake
        alert_id = raise_one(db, ids)
        events.wake()
        return alert_id

    async def scenario() -> None:
        # A poll far longer than the test: only wake() can make the notice this quick.
        notifier = events.WelfareNotifier(settings, db, bus, poll_s=600)  # type: ignore[arg-type]
        running = asyncio.create_task(notifier.run())
        try:
            await until(lambda: notifier in events._running, timeout=30, what="the notifier runs")
            with pytest.raises(RuntimeError), db.session() as s:
                service.raise_alert(s, campaign=s.get(Campaign, ids[0]), contact=s.get(Contact, ids[1]),
                                    attempt_id="a", kind="help", detail={})  # fmt: skip
                raise RuntimeError("the attempt's close failed")
            await asyncio.to_thread(commit_and_wake)
            await until(lambda: bus.sent, timeout=30, what="the alert on the bus")
            await asyncio.sleep(0.1)  # nothing more comes
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert notifier not in events._running

    asyncio.run(scenario())
    assert len(bus.sent) == 1
    msg = bus.sent[0]
    assert isinstance(msg, WelfareAlert)
    assert msg.kind == "unreached" and msg.state == "open" and msg.phone == "138****8000"
    assert msg.path.startswith("alerts/welfare-")
    assert "王奶奶" in msg.summary and "13800138000" not in msg.model_dump_json()
    with db.session() as s:
        assert s.scalar(select(Alert).where(Alert.kind == "help")) is None, "rolled back: no alert"
        alert = s.scalar(select(Alert))
        assert alert is not None and alert.webhook_status == events.NOT_CONFIGURED, "marked as sent"


def test_a_crash_between_commit_and_notice_loses_nothing_and_two_notifiers_send_once(
    db: Database, settings: Settings
) -> None:
    ids = seed(db)
    first = raise_one(db, ids)  # committed, then the process died: no notifier ever saw it
    bus = FakeBus()
    one = events.WelfareNotifier(settings, db, bus)  # type: ignore[arg-type]
    other = events.WelfareNotifier(settings, db, bus)  # type: ignore[arg-type]

    async def both() -> list[int]:
        return list(await asyncio.gather(one.deliver_pending(), other.deliver_pending()))

    assert sorted(asyncio.run(both())) == [0, 1], "claimed by exactly one of them"
    assert [m.alert_id for m in bus.sent] == [events.topic_id(first)]  # type: ignore[attr-defined]
    assert asyncio.run(one.deliver_pending()) == 0, "sent: no longer pending"

    # A claim whose process died while sending expires; a live one is left to its owner.
    second = raise_one(db, seed_other(db))
    with db.session() as s:
        service.get_alert(s, first).webhook_status = "sending until 2000-01-01T00:00:00"
        service.get_alert(s, second).webhook_status = "sending until 2999-01-01T00:00:00"
    assert asyncio.run(one.deliver_pending()) == 1
    with db.session() as s:
        assert service.get_alert(s, first).webhook_status == events.NOT_CONFIGURED
        assert service.get_alert(s, second).webhook_status == "sending until 2999-01-01T00:00:00"


def test_a_persons_change_is_announced_with_who_made_it(db: Database, settings: Settings) -> None:
    alert_id = raise_one(db, seed(db))
    with db.session() as s:
        service.acknowledge(s, alert_id, actor="sup")
    bus = FakeBus()
    asyncio.run(events.announce_change(bus, db, alert_id, by="sup"))  # type: ignore[arg-type]
    asyncio.run(events.announce_change(None, db, alert_id, by="sup"))  # no bus: nothing to do
    assert [(m.state, m.by) for m in bus.sent] == [("acknowledged", "sup")]  # type: ignore[attr-defined]


class Hook(BaseHTTPRequestHandler):
    codes: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        Hook.bodies.append(json.loads(self.rfile.read(length)))
        code = Hook.codes.pop(0) if Hook.codes else 200
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[str]:
    Hook.codes, Hook.bodies = [], []
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_retries_with_backoff_then_delivers(
    db: Database, settings: Settings, hook_server: str
) -> None:
    settings.welfare_webhook_url = hook_server
    settings.welfare_webhook_attempts = 4
    Hook.codes = [500, 503]  # two failures, then 200
    alert_id = raise_one(db, seed(db))
    notifier = events.WelfareNotifier(settings, db, None, backoff=0.05)
    asyncio.run(notifier.deliver(alert_id))
    assert len(Hook.bodies) == 3
    body = Hook.bodies[-1]
    assert body["event"] == "welfare.alert.raised" and body["alert"]["id"] == alert_id
    assert body["alert"]["phone"] == "138****8000" and "13800138000" not in json.dumps(body)
    with db.session() as s:
        assert service.get_alert(s, alert_id).webhook_status == "delivered"


def test_webhook_failure_is_logged_and_the_alert_kept(
    db: Database, settings: Settings, hook_server: str
) -> None:
    settings.welfare_webhook_url = hook_server
    settings.welfare_webhook_attempts = 3
    Hook.codes = [500, 500, 500, 500]
    alert_id = raise_one(db, seed(db))
    notifier = events.WelfareNotifier(settings, db, None, backoff=0.01)
    asyncio.run(notifier.deliver(alert_id))
    assert len(Hook.bodies) == 3
    with db.session() as s:
        alert = service.get_alert(s, alert_id)
        assert alert.state is AlertState.open and alert.webhook_status == "failed: HTTP 500"
    # A server that is not there at all: still logged, still kept.
    settings.welfare_webhook_url = "http://127.0.0.1:9/nothing"
    second = raise_one(db, seed_other(db))
    asyncio.run(events.WelfareNotifier(settings, db, None, backoff=0.01).deliver(second))
    with db.session() as s:
        assert (service.get_alert(s, second).webhook_status or "").startswith("failed: ConnectError")


def seed_other(db: Database) -> tuple[int, int]:
    with db.session() as s:
        campaign = s.scalar(select(Campaign))
        assert campaign is not None
        contact = Contact(campaign_id=campaign.id, phone_e164="+8613900139000", name="李爷爷", fields={})
        s.add(contact)
        s.flush()
        return campaign.id, contact.id


def test_pending_alert_goes_to_the_webhook_once(db: Database, settings: Settings, hook_server: str) -> None:
    alert_id = raise_one(db, seed(db))  # raised with no notifier running: nothing was sent
    settings.welfare_webhook_url = hook_server
    notifier = events.WelfareNotifier(settings, db, None, backoff=0.01)
    assert asyncio.run(notifier.deliver_pending()) == 1
    assert asyncio.run(notifier.deliver_pending()) == 0
    assert [b["alert"]["id"] for b in Hook.bodies] == [alert_id]
    with db.session() as s:
        assert service.get_alert(s, alert_id).webhook_status == "delivered"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    settings.dialer_enabled = False
    with db.session() as s:
        for name, role in (("mgr", Role.manager), ("sup", Role.supervisor), ("agent1", Role.agent)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
    with TestClient(create_app(settings, db), headers={"Accept-Language": "en"}) as c:
        yield c


def test_api_roles_and_transitions(client: TestClient, db: Database) -> None:
    alert_id = raise_one(db, seed(db))
    sup, mgr, agent = login(client, "sup"), login(client, "mgr"), login(client, "agent1")
    assert client.get("/api/welfare/alerts").status_code == 401
    assert client.get("/api/welfare/alerts", headers=agent).status_code == 403
    listed = client.get("/api/welfare/alerts", headers=mgr).json()
    assert [a["id"] for a in listed["alerts"]] == [alert_id] and listed["counts"]["open"] == 1
    assert listed["alerts"][0]["summary"].startswith("王奶奶, 138****8000, not reached")
    assert client.post(f"/api/welfare/alerts/{alert_id}/acknowledge", headers=mgr).status_code == 403
    resp = client.post(f"/api/welfare/alerts/{alert_id}/acknowledge", headers=sup, json={"note": "on it"})
    assert resp.status_code == 200 and resp.json()["state"] == "acknowledged"
    assert client.post(f"/api/welfare/alerts/{alert_id}/resolve", headers=sup, json={}).status_code == 422
    resp = client.post(
        f"/api/welfare/alerts/{alert_id}/resolve", headers=sup, json={"resolution": "Reached."}
    )
    assert resp.status_code == 200 and resp.json()["resolved_by"] == "sup"
    again = client.post(f"/api/welfare/alerts/{alert_id}/resolve", headers=sup, json={"resolution": "x"})
    assert again.status_code == 409
    assert client.post("/api/welfare/alerts/424242/acknowledge", headers=sup).status_code == 404
    assert client.get("/api/welfare/alerts", headers=sup).json()["alerts"] == []
    assert len(client.get("/api/welfare/alerts?state=all", headers=sup).json()["alerts"]) == 1
