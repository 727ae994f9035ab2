"""`GET /api/campaigns/{name}/stats` and `warmline campaign status`: roles and figures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from core.auth import service
from core.auth.models import Role
from core.cli import CliContext
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.ledger import claim, close
from dialer.models import CampaignStatus, Contact
from dialer.outcomes import CallFacts
from tests.utils import PASSWORD, login
from tests.utils.cli import CliRunner
from warmline.app import create_app
from warmline.cli import app

AT = datetime(2024, 11, 4, 2, 0, tzinfo=UTC)


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with db.session() as s:
        for name, role in (("mgr", Role.manager), ("sup", Role.supervisor), ("ag", Role.agent)):
            service.create_user(s, name, role, PASSWORD, actor="test")
        spec = {"name": "flu", "kind": "broadcast", "flow": "vaccination_reminder"}
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        s.add(Contact(campaign_id=campaign.id, phone_e164="+8613800000000", fields={}))
        s.add(Contact(campaign_id=campaign.id, phone_e164="+8613800000007", fields={}))
    with db.session() as s:
        a, _b = claim(s, svc.require_campaign(s, "flu"), 2, AT, node="lab")
    with db.session() as s:
        close(s, a.attempt_id, CallFacts(answered=True, amd_status="HUMAN", flow_outcome="opted_out"), AT)
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_stats_for_managers_and_supervisors_only(client: TestClient) -> None:
    for name in ("mgr", "sup"):
        resp = client.get("/api/campaigns/flu/stats", headers=login(client, name))
        assert resp.status_code == 200
        body = resp.json()
        assert body["figures"]["dialled"] == 2 and body["figures"]["opted_out"] == 1
        assert body["figures"]["live"] == 1 and body["outcomes"] == {"opted_out": 1}
    assert client.get("/api/campaigns/flu/stats", headers=login(client, "ag")).status_code == 403
    assert client.get("/api/campaigns/nope/stats", headers=login(client, "mgr")).status_code == 404


def test_cli_status(settings: Settings, db: Database, client: TestClient) -> None:
    runner = CliRunner()
    given = CliContext(lambda: settings, lambda _settings: db)  # the root command keeps what it is handed
    result = runner.invoke(app, ["campaign", "status", "flu", "--json"], obj=given)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["figures"]["opted_out"] == 1 and data["status"] == "running"
    text = runner.invoke(app, ["campaign", "status", "flu"], obj=given)
    assert "opted out" in text.output and text.exit_code == 0
    assert runner.invoke(app, ["campaign", "status", "nope"], obj=given).exit_code == 2


PACING_LIVE = {
    "mode": "predictive",
    "policy": "predictive",
    "calls": 1,
    "reason": "holding_back",
    "params": {"rate": 0.027, "limit": 0.03},
    "abandon_rate": 0.027,
    "abandon_limit": 0.03,
    "window_hours": 24.0,
    "live_answers": 150,
    "abandoned": 4,
    "occupancy": 0.8412,
    "agent_wait_s": 12.4,
    "agents_free": 1,
    "agents_busy": 3,
    "agents_paused": 1,
    "ringing": 2,
    "waiting": 0,
    "inbound_waiting": 0,
}


def test_a_paced_campaign_shows_its_pacer_in_the_page_language(client: TestClient, db: Database) -> None:
    with db.session() as s:
        spec = {"name": "followup", "kind": "agent", "mode": "predictive"}
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.pacing_live = dict(PACING_LIVE)
    headers = login(client, "sup")
    body = client.get("/api/campaigns/followup/stats", headers=headers).json()
    pacing = body["pacing"]
    assert pacing["reason"] == "holding_back" and pacing["abandon_rate"] == 0.027
    assert pacing["reason_text"] == "放缓拨号：放弃率 2.7%，上限 3%"
    assert pacing["shown"]["occupancy"] == "84.1%" and pacing["shown"]["agent_wait"] == "12 秒"
    english = client.get("/api/campaigns/followup/stats", headers={**headers, "Accept-Language": "en"}).json()
    assert english["pacing"]["reason_text"] == "holding back: abandon 2.7% of 3%"
    assert client.get("/api/campaigns/flu/stats", headers=headers).json()["pacing"] is None, "not paced"
    page = client.get("/console/campaigns/followup/live", headers=headers)
    assert page.status_code == 200
    assert 'id="pacing-reason" role="status" aria-live="polite"' in page.text
    assert "放缓拨号：放弃率 2.7%，上限 3%" in page.text and "坐席占用率" in page.text


def test_stats_and_the_live_page_say_what_the_dialer_reports_degraded(
    settings: Settings, client: TestClient
) -> None:
    """The dialer's fault board (var/dialer/faults.json): the stats' `faults`, the live page's
    notice (an assertive live region), and /healthz's `dialer` section for administrators."""
    from sqlalchemy.exc import OperationalError

    from dialer.engine.faults import DatabaseWatch, FaultBoard

    mgr = login(client, "mgr")
    assert client.get("/api/campaigns/flu/stats", headers=mgr).json()["faults"]["status"] == "unknown"
    watch = DatabaseWatch(lambda: None)
    board = FaultBoard(settings.var_dir / "dialer" / "faults.json", watch, bus_connected=lambda: True)
    board.write()
    assert client.get("/api/campaigns/flu/stats", headers=mgr).json()["faults"] == {
        "status": "ok",
        "degraded": [],
        "new_calls_paused": False,
        "journal_pending": 0,
    }
    page = client.get("/console/campaigns/flu/live", headers=mgr).text
    assert 'id="faults"' in page and 'aria-live="assertive"' in page and " hidden>" in page
    watch.failed(OperationalError("SELECT 1", {}, Exception("refused")))
    board.write()
    faults = client.get("/api/campaigns/flu/stats", headers=mgr).json()["faults"]
    assert (
        faults["status"] == "degraded" and faults["degraded"] == ["database"] and faults["new_calls_paused"]
    )
    page = client.get("/console/campaigns/flu/live", headers=mgr | {"Accept-Language": "en"}).text
    assert "The database is unreachable: no new call is started" in page
    page = client.get("/console/campaigns/flu/live", headers=mgr).text
    assert "数据库无法连接" in page
