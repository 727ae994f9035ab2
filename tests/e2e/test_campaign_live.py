"""The live campaign figures page in Chromium: figures from the database, refreshed in place,
progress announced in a polite live region, axe-clean."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect

from core.auth import service
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.ledger import claim, close
from dialer.models import CampaignStatus, Contact
from dialer.outcomes import CallFacts
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_campaigns_page import PW, sign_in
from tests.utils.live_server import LiveServer

# Written against the English pages: an English browser, users who made no choice.
pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]
AT = datetime(2024, 11, 4, 2, 0, tzinfo=UTC)


@pytest.fixture
def watcher(db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "sup", Role.supervisor, PW, actor="test")


def test_live_figures_update_and_announce(
    page: Page, live_server: LiveServer, watcher: None, db: Database
) -> None:
    spec = {
        "name": "flu-live",
        "kind": "broadcast",
        "flow": "vaccination_reminder",
        "windows": {"daily": ["00:00-24:00"]},
    }
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        for i in range(3):
            s.add(Contact(campaign_id=campaign.id, phone_e164=f"+861380000000{i}", fields={}))
    with db.session() as s:
        first, second, _ = claim(s, svc.require_campaign(s, "flu-live"), 3, AT, node="lab")
    with db.session() as s:
        close(s, first.attempt_id, CallFacts(answered=True, amd_status="HUMAN", flow_outcome="confirmed"), AT)

    sign_in(page, live_server, "sup")
    page.goto(live_server.url + "/console/campaigns/flu-live/live")
    expect(page.get_by_role("heading", level=1)).to_have_text("Live figures: flu-live")
    figures = page.get_by_role("table", name="Figures for this campaign")
    expect(figures.get_by_role("row", name="Confirmed")).to_contain_text("1")
    expect(page.locator("#progress")).to_have_text("1 of 3 contacts finished; 2 calls in progress.")
    assert_accessible(page)

    with db.session() as s:
        close(s, second.attempt_id, CallFacts(answered=True, amd_status="MACHINE", message_left=True), AT)
    # the page refreshes every 5 s; the default deadline (tests/e2e/conftest.py) allows for a busy machine
    expect(figures.get_by_role("row", name="Answering machines")).to_contain_text("1")
    expect(page.locator("#progress")).to_have_text("2 of 3 contacts finished; 1 calls in progress.")
    expect(page.locator("#progress")).to_have_attribute("aria-live", "polite")
    assert_accessible(page)


def test_a_paced_campaign_shows_its_pacer_and_announces_a_new_reason(
    page: Page, live_server: LiveServer, watcher: None, db: Database
) -> None:
    live = {
        "mode": "predictive",
        "policy": "predictive",
        "calls": 2,
        "reason": "predicting",
        "params": {"calls": 2, "free": 1, "soon": 1, "answer_rate": 0.3},
        "abandon_rate": 0.012,
        "abandon_limit": 0.03,
        "window_hours": 24.0,
        "live_answers": 250,
        "abandoned": 3,
        "occupancy": 0.86,
        "agent_wait_s": 14.0,
        "agents_free": 1,
        "agents_busy": 3,
        "agents_paused": 0,
        "ringing": 2,
        "waiting": 0,
        "inbound_waiting": 0,
    }
    with db.session() as s:
        spec = {"name": "followup", "kind": "agent", "mode": "predictive"}
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        campaign.pacing_live = dict(live)
    sign_in(page, live_server, "sup")
    page.goto(live_server.url + "/console/campaigns/followup/live")
    pacing = page.get_by_role("table", name="Pacing")
    expect(pacing.get_by_role("row", name="Agent occupancy")).to_contain_text("86%")
    reason = page.locator("#pacing-reason")
    expect(reason).to_have_attribute("aria-live", "polite")
    expect(reason).to_have_text("predictive: 2 calls for 1 free agents and 1 expected free, live answers 30%")
    assert_accessible(page)

    with db.session() as s:
        svc.require_campaign(s, "followup").pacing_live = {
            **live,
            "calls": 1,
            "reason": "holding_back",
            "params": {"rate": 0.027, "limit": 0.03},
            "abandon_rate": 0.027,
        }
    expect(reason).to_have_text("holding back: abandon 2.7% of 3%")
    expect(pacing.get_by_role("row", name="Abandon rate in the window")).to_contain_text("2.7% of 3%")
    assert_accessible(page)


def test_a_database_outage_is_announced_on_the_live_page(
    page: Page, live_server: LiveServer, watcher: None, db: Database, settings: Settings
) -> None:
    """The dialer's fault board says the database is away: the page says so in an assertive live
    region (without a reload), and says nothing once it is back; axe-clean both ways."""
    from sqlalchemy.exc import OperationalError

    from dialer.engine.faults import DatabaseWatch, FaultBoard

    spec = {"name": "flu-faults", "kind": "broadcast", "flow": "vaccination_reminder"}
    with db.session() as s:
        svc.create_campaign(s, svc.build_spec(spec), actor="t")
    watch = DatabaseWatch(lambda: None)
    board = FaultBoard(settings.var_dir / "dialer" / "faults.json", watch, bus_connected=lambda: True)
    board.write()
    sign_in(page, live_server, "sup")
    page.goto(live_server.url + "/console/campaigns/flu-faults/live")
    notice = page.locator("#faults")
    expect(notice).to_be_hidden()
    watch.failed(OperationalError("SELECT 1", {}, Exception("refused")))
    board.write()
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("The database is unreachable: no new call is started")
    expect(notice).to_have_attribute("aria-live", "assertive")
    assert_accessible(page)
    watch.succeeded()
    board.write()
    expect(notice).to_be_hidden()


def test_a_slow_ari_is_announced_on_the_live_page(
    page: Page, live_server: LiveServer, watcher: None, db: Database, settings: Settings
) -> None:
    """The board says a node's ARI is slow and holding calls back: campaign_live.js says the same
    sentence as the server, without a reload, and nothing once ARI is fast again."""
    from dialer.engine.faults import DatabaseWatch, FaultBoard

    spec = {"name": "flu-ari", "kind": "broadcast", "flow": "vaccination_reminder"}
    with db.session() as s:
        svc.create_campaign(s, svc.build_spec(spec), actor="t")
    nodes: dict[str, dict[str, object]] = {}
    board = FaultBoard(
        settings.var_dir / "dialer" / "faults.json",
        DatabaseWatch(lambda: None),
        bus_connected=lambda: True,
        ari=lambda: nodes,
    )
    board.write()
    sign_in(page, live_server, "sup")
    page.goto(live_server.url + "/console/campaigns/flu-ari/live")
    notice = page.locator("#faults")
    expect(notice).to_be_hidden()
    nodes["lab"] = {
        "degraded": True, "slow": True, "holding_back": True, "ari_ms": 3000, "ari_window": 2,
        "ari_held_back": 7, "ari_slow": 1,
    }  # fmt: skip
    board.write()
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(
        "Asterisk is answering slowly (3000 ms): new calls are slowed down, at most 2 started at once "
        "(7 held back so far)."
    )
    assert_accessible(page)
    nodes.clear()
    board.write()
    expect(notice).to_be_hidden()
