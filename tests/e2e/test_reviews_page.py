"""The reviewer's page in Chromium: claim, listen (audited), keyboard shortcuts, the scorecard filled
and submitted by keyboard alone with a live-region confirmation; the agent acknowledges; axe-clean."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from core.audit import AuditEntry
from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from recordings import service as recordings
from recordings.qa import service as qa
from recordings.qa.models import QaReview
from recordings.qa.sampling import SamplingParams, TargetRules
from tests import audio_fixtures as af
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import LiveServer, new_page, wait_in_page
from tests.e2e.test_console import sign_in_by_keyboard
from tests.unit.test_recordings_registry import make_campaign

# Written against the English pages: an English browser, users who made no choice.
pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]
PW = "correct horse battery"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture
def sampled(db: Database, settings: Settings, tmp_path: Path) -> str:
    """A realistic stereo call by agent li, registered, analysed and drawn into 2026-W48's sample."""
    if not af.have_tools():
        pytest.fail("espeak-ng and sox are needed (make test installs them)")
    bank = af.ClipBank(tmp_path / "clips")
    placements, end, clicks = af.scripted_call(bank)
    call = af.render(tmp_path / "call.wav", placements, end, clicks=clicks, seed=3)
    cid = make_campaign(db)
    with db.session() as s:
        auth.create_user(s, "qa1", Role.qa, PW, actor="test", display_name="Zhou Min")
        auth.create_user(s, "li", Role.agent, PW, actor="test")
        rec = recordings.register_recording(
            s, settings, call.path, campaign_id=cid, campaign="welfare", elder_welfare=True, contact_id=None,
            agent="li", started_at=T0, ended_at=None, source="agent-bridge",
        )  # fmt: skip
        params = SamplingParams(rate=1.0, min_per_agent=1, max_per_agent=5, double_score_rate=0.0)
        qa.draw_sample(s, settings, "2026-W48", seed=1, params=params, rules=TargetRules(), actor="test")
        return rec.id


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (what a keyboard user does)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement && document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def current_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def test_reviewer_claims_listens_scores_by_keyboard_and_agent_acknowledges(
    page: Page, live_server: LiveServer, db: Database, sampled: str
) -> None:
    sign_in_by_keyboard(page, live_server, "qa1", PW)
    expect(page.get_by_role("heading", level=1)).to_have_text("Home")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reviews")
    expect(page.get_by_role("heading", name="Random sample")).to_be_visible()
    expect(page.get_by_role("heading", name="Targeted queue (not in the averages)")).to_be_visible()
    random_table = page.get_by_role("table", name="Random sample: 1 call")
    expect(random_table).to_contain_text("li × welfare")
    expect(random_table).to_contain_text("random: draw 1 of 1")
    assert_accessible(page)

    # Claim by keyboard.
    claim = random_table.get_by_role("button", name="Claim random call")
    claim.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review of a call by li")
    page.wait_for_load_state()  # reviews.js (end of the page) binds the player's keys and the form
    expect(page.get_by_role("img", name="Who spoke when")).to_be_visible()
    page.get_by_text("Speech segments as a table").focus()
    page.keyboard.press("Enter")  # opens the text alternative
    rows = page.get_by_role("table", name="Speech segments in time order").get_by_role("row")
    assert rows.count() > 5
    expect(page.get_by_text("k or Space plays or pauses")).to_be_visible()
    assert_accessible(page)

    # Play with k: the audited route streams it.
    page.locator("main").focus()
    page.keyboard.press("k")
    wait_in_page(page, "document.getElementById('player').currentTime > 0.8", timeout_ms=60_000)
    with db.session() as s:
        played = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "recording.play")))
    assert [(e.actor, e.target) for e in played][:1] == [("qa1", sampled)]
    # Space pauses (focus is not in a form field); l and j skip 5 s either way.
    page.keyboard.press("Space")
    wait_in_page(page, "document.getElementById('player').paused")
    t = current_time(page)
    page.keyboard.press("l")
    assert current_time(page) == pytest.approx(t + 5, abs=0.3)
    expect(page.locator("#player-status")).to_contain_text("Forward 5 seconds")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert current_time(page) == pytest.approx(max(0.0, t - 5), abs=0.3)
    expect(page.locator("#player-status")).to_contain_text("Back 5 seconds")
    # The browser runs key presses before the media's queued pause event (fresh run 8 lost "Forward
    # 5 seconds" to a late "Paused at"): pause and skip in one task, so the event surely comes after.
    page.keyboard.press("k")
    wait_in_page(page, "!document.getElementById('player').paused")
    said = page.evaluate(
        """() => new Promise((done) => {
            const player = document.getElementById('player');
            player.addEventListener('pause', () => setTimeout(
                () => done(document.getElementById('player-status').textContent), 0), { once: true });
            for (const key of [' ', 'l']) {
                document.body.dispatchEvent(new KeyboardEvent('keydown', { key, bubbles: true }));
            }
        })"""
    )
    assert "Forward 5 seconds" in said

    # The scorecard by keyboard alone: Space picks the first choice, arrows move within a group.
    steps = [
        ("greeting", 0), ("identity", 0), ("wellbeing", 0), ("listening", 3), ("escalation", 0),
        ("summary", 0), ("courtesy", 4),
    ]  # fmt: skip
    for key, right in steps:
        tab_to(page, f"input[name='a:{key}']")
        page.keyboard.press("Space")
        for _ in range(right):
            page.keyboard.press("ArrowRight")
    # typing 'k', 'j' or 'l' in the feedback box types them; it does not drive the player
    tab_to(page, "#comment")
    paused_at = current_time(page)
    page.keyboard.type("Kind and clear; link the next call to the visit.")
    assert current_time(page) == pytest.approx(paused_at, abs=0.01)
    expect(page.locator("#comment")).to_have_value("Kind and clear; link the next call to the visit.")
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    # opening 100, welfare (2 + 3*0.75 + 3)/8, closing 100; sections 20/50/30 -> 95.3
    expect(page.locator("#status")).to_have_text("Review submitted: score 95.3 of 100.")
    assert_accessible(page)
    with db.session() as s:
        review = s.scalars(select(QaReview)).one()
        assert review.state.value == "completed" and review.score == 95.3 and review.reviewer == "qa1"
        assert review.answers == {
            "greeting": "yes", "identity": "yes", "wellbeing": "yes", "listening": 3, "escalation": "yes",
            "summary": "yes", "courtesy": 4,
        }  # fmt: skip

    # The agent reads it and acknowledges, by keyboard.
    assert page.context.browser is not None
    agent = new_page(page.context.browser, "en-US")
    sign_in_by_keyboard(agent, live_server, "li", PW)
    agent.get_by_role("navigation", name="Main").get_by_role("link", name="My reviews").focus()
    agent.keyboard.press("Enter")
    expect(agent.get_by_role("heading", level=1)).to_have_text("My reviews")
    agent.wait_for_load_state()  # reviews.js sends the acknowledgement below
    expect(agent.get_by_role("heading", level=2)).to_contain_text("Elder welfare call")
    expect(agent.get_by_role("heading", level=2)).to_contain_text("score 95.3")
    expect(agent.get_by_text("Kind and clear")).to_be_visible()
    assert_accessible(agent)
    agent.get_by_role("button", name="Acknowledge review").focus()
    agent.keyboard.press("Enter")
    expect(agent.locator("#status")).to_have_text("Review acknowledged. Thank you.")
    assert_accessible(agent)
    agent.context.close()
    with db.session() as s:
        assert s.scalars(select(QaReview)).one().acknowledged_at is not None
        acks = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "qa.review.acknowledge")))
        assert [a.actor for a in acks] == ["li"]
