"""The supervisor's welfare-alerts page in Chromium: a new alert is announced through the live
region without a reload, then acknowledged and resolved by keyboard alone; axe-clean throughout."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from dialer import campaigns
from dialer.models import Campaign, Contact
from dialer.welfare import service
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_console import sign_in_by_keyboard
from tests.utils.live_server import LiveServer

# Written against the English pages: an English browser, users who made no choice.
pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]
PW = "correct horse battery"

RECORD_STATUS = """
window.__said = [];
new MutationObserver(() => window.__said.push(document.getElementById('status').textContent))
  .observe(document.getElementById('status'), {childList: true, characterData: true, subtree: true});
"""


def add_alert(db: Database, phone: str, name: str, kind: str) -> int:
    with db.session() as s:
        campaign = s.query(Campaign).one_or_none()
        if campaign is None:
            spec = campaigns.build_spec(
                {"name": "elder-w48", "kind": "broadcast", "flow": "elder_welfare_check"}
            )
            campaign = campaigns.create_campaign(s, spec, actor="test")
        contact = Contact(campaign_id=campaign.id, phone_e164=phone, name=name, fields={})
        s.add(contact)
        s.flush()
        alert = service.raise_alert(
            s, campaign=campaign, contact=contact, attempt_id=None, kind=kind, detail={}
        )
        return alert.id


@pytest.fixture
def supervisor(db: Database) -> None:
    with db.session() as s:
        auth.create_user(s, "sup", Role.supervisor, PW, actor="test", display_name="Zhou Min")


def test_supervisor_hears_a_new_alert_and_settles_it_by_keyboard(
    page: Page, live_server: LiveServer, supervisor: None, db: Database
) -> None:
    first = add_alert(db, "+8613800138000", "王奶奶", "unreached")
    sign_in_by_keyboard(page, live_server, "sup", PW)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Welfare alerts").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Welfare alerts")
    table = page.get_by_role("table", name="Unresolved alerts")
    expect(table).to_contain_text("王奶奶, 138****8000, not reached after every attempt (elder-w48).")
    expect(page.get_by_role("status")).to_have_text("1 open, 0 acknowledged.")
    assert "13800138000" not in page.content()
    assert_accessible(page)

    # A new alert arrives while the page is open: announced, and its row appears.
    page.evaluate(RECORD_STATUS)
    second = add_alert(db, "+8613900139000", "李爷爷", "help")
    # The masked number is said digit by digit (a screen reader reads "139****9000" as a figure).
    expect(page.get_by_role("status")).to_have_text(
        "New welfare alert: 李爷爷, 1 3 9, 4 digits hidden, 9 0 0 0, asked for help (elder-w48).",
        timeout=30_000,
    )
    spoken_second = "李爷爷, 1 3 9, 4 digits hidden, 9 0 0 0, asked for help (elder-w48)."
    expect(page.get_by_role("row", name=spoken_second)).to_be_visible()
    expect(page.get_by_role("row", name=spoken_second)).to_contain_text("139****9000")  # what is seen
    assert_accessible(page)

    # Acknowledge the first by keyboard.
    page.get_by_role("button", name=f"Acknowledge alert {first}").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(f"Alert {first} acknowledged.")
    expect(page.get_by_role("button", name=f"Acknowledge alert {first}")).to_have_count(0)
    expect(
        page.get_by_role(
            "row", name="王奶奶, 1 3 8, 4 digits hidden, 8 0 0 0, not reached after every attempt"
        )
    ).to_contain_text("acknowledged by sup")

    # Resolving without a note is refused, said where; then typed and sent with Enter.
    page.get_by_label(f"Resolution for alert {second}").focus()
    page.keyboard.press("Enter")
    # the browser's own required-field check keeps the form from being sent
    expect(page.get_by_label(f"Resolution for alert {second}")).to_be_focused()
    page.keyboard.type("护士已上门，老人平安。")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(f"Alert {second} resolved.")
    expect(page.get_by_role("table", name="The last resolved alert")).to_contain_text(
        "护士已上门，老人平安。"
    )
    expect(page.get_by_role("row", name=spoken_second)).to_have_count(1)
    assert_accessible(page)

    with db.session() as s:
        assert service.get_alert(s, first).state.value == "acknowledged"
        assert service.get_alert(s, second).resolved_by == "sup"
