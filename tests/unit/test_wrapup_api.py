"""`POST /api/agents/me/wrapup` and `GET /api/agents/me/dispositions` through the FastAPI app, on
SQLite and PostgreSQL, with the wrap-up's clock and the bus replaced by the test's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.messages import BusMessage, CallEvent
from core.settings import Settings
from dialer import wrapup_api
from dialer.models import Attempt, DncGlobal
from tests.unit.test_wrapup import PHONE, T0, hang_up, local, make, taken
from tests.utils import PASSWORD, login
from warmline.app import create_app


class RecordingBus:
    """Stands in for the MQTT bus: keeps what is published, or fails like a bus that is down."""

    def __init__(self) -> None:
        self.sent: list[BusMessage] = []
        self.down = False

    async def publish(self, message: BusMessage) -> bool:
        if self.down:
            raise ConnectionError("broker away")
        self.sent.append(message)
        return True


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("mei", Role.agent), ("lan", Role.agent), ("sup", Role.supervisor)):
            service.create_user(s, name, role, PASSWORD, actor="test")
    app = create_app(settings, db)
    now: Callable[[], datetime] = lambda: T0 + timedelta(minutes=5)  # noqa: E731
    app.dependency_overrides[wrapup_api.clock] = lambda: now
    with TestClient(app) as c:
        app.state.bus = RecordingBus()
        yield c


def bus(client: TestClient) -> RecordingBus:
    found: RecordingBus = client.app.state.bus  # type: ignore[attr-defined]
    return found


def post(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/agents/me/wrapup", headers=headers, json=body)


def test_a_callback_outside_the_window_is_stored_moved_and_published(
    client: TestClient, db: Database
) -> None:
    make(db)
    aid = taken(db)
    hang_up(db, aid, T0 + timedelta(minutes=4))
    mei = login(client, "mei")
    evening = "2024-11-04T20:30:00"  # the callee's local time (no zone)
    resp = post(client, mei, call_ref=aid, disposition="callback", callback_at=evening, note="晚上不方便")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["stored"], body["already"], body["action"], body["callback_moved"]) == (
        True,
        False,
        "callback",
        "window",
    )
    assert body["callback_at"] == local(2024, 11, 5, 9).isoformat()
    assert body["callback_agent"] == "mei" and body["contact_state"] == "pending"
    assert "不在拨打时段内，回拨改到 2024-11-05 09:00" in body["message"] and body["published"] is True
    [event] = bus(client).sent
    assert isinstance(event, CallEvent) and (event.call_id, event.kind, event.campaign) == (
        aid,
        "wrapup",
        "c1",
    )
    assert event.detail["disposition"] == "callback" and "note" not in event.detail  # the note stays home
    with db.session() as s:
        stored = s.get(Attempt, aid)
        assert stored is not None and (stored.disposition, stored.note) == ("callback", "晚上不方便")

    again = post(client, mei, call_ref=aid, disposition="callback", callback_at=evening, note="晚上不方便")
    assert again.status_code == 200 and again.json()["already"] is True
    assert len(bus(client).sent) == 1, "a repeat is not announced again"
    other = post(client, mei, call_ref=aid, disposition="confirmed")
    assert other.status_code == 409 and other.json()["detail"]["code"] == "already_wrapped_up"
    assert (
        "已于" in other.json()["detail"]["message"] and "处理为 callback" in other.json()["detail"]["message"]
    )
    english = client.post(
        "/api/agents/me/wrapup",
        headers={**mei, "Accept-Language": "en"},
        json={"call_ref": aid, "disposition": "confirmed"},
    )
    assert "was wrapped up as callback" in english.json()["detail"]["message"]


def test_not_yours_unknown_and_bad_input(client: TestClient, db: Database) -> None:
    make(db)
    aid = taken(db)
    mei, lan, sup = login(client, "mei"), login(client, "lan"), login(client, "sup")
    not_hers = post(client, lan, call_ref=aid, disposition="confirmed")
    assert not_hers.status_code == 403 and not_hers.json()["detail"]["code"] == "not_your_call"
    assert "不是 lan 接听的" in not_hers.json()["detail"]["message"]
    assert post(client, sup, call_ref=aid, disposition="confirmed").status_code == 403  # not an agent
    missing = post(client, mei, call_ref="0f1e2d3c-0000-4000-8000-000000000000", disposition="confirmed")
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "unknown_call"
    assert missing.json()["detail"]["message"].startswith("没有通话")
    unknown = post(client, mei, call_ref=aid, disposition="maybe")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "disposition"]
    no_time = post(client, mei, call_ref=aid, disposition="callback")
    assert no_time.status_code == 422 and no_time.json()["detail"][0]["loc"] == ["body", "callback_at"]
    bad_time = post(client, mei, call_ref=aid, disposition="callback", callback_at="tomorrow")
    assert bad_time.status_code == 422 and bad_time.json()["detail"][0]["loc"] == ["body", "callback_at"]
    bad_answer = post(client, mei, call_ref=aid, disposition="confirmed", answers={"x" * 65: "1"})
    assert bad_answer.status_code == 422 and bad_answer.json()["detail"][0]["loc"][:2] == ["body", "answers"]
    assert post(client, mei, call_ref=aid, disposition="confirmed", answers={"年龄": 81}).status_code == 200


def test_the_wrap_up_is_kept_and_acted_on_with_the_bus_down(client: TestClient, db: Database) -> None:
    make(db)
    aid = taken(db)
    bus(client).down = True
    resp = post(client, login(client, "mei"), call_ref=aid, disposition="opt_out")
    assert resp.status_code == 200 and resp.json()["published"] is False
    with db.session() as s:
        assert s.scalar(select(DncGlobal.phone_e164)) == PHONE
        stored = s.get(Attempt, aid)
        assert stored is not None and stored.disposition == "opt_out"


def test_the_softphone_reads_a_campaigns_choices(client: TestClient, db: Database) -> None:
    make(db, dispositions=[{"code": "reached", "label": "已回访", "label_en": "Reached", "action": "done"}])
    mei = login(client, "mei")
    defaults = client.get("/api/agents/me/dispositions", headers=mei).json()
    assert defaults["campaign"] is None and [d["key"] for d in defaults["dispositions"]] == [
        str(n) for n in range(1, 10)
    ]
    assert defaults["dispositions"][2] == {
        "key": "3",
        "code": "callback",
        "label": "约定回拨",
        "label_en": "Callback requested",
        "action": "callback",
    }
    own = client.get("/api/agents/me/dispositions", params={"campaign": "c1"}, headers=mei).json()
    assert own["dispositions"] == [
        {"key": "1", "code": "reached", "label": "已回访", "label_en": "Reached", "action": "done"}
    ]
    assert client.get("/api/agents/me/dispositions?campaign=nope", headers=mei).status_code == 404
    assert client.get("/api/agents/me/dispositions", headers=login(client, "sup")).status_code == 403
