"""The supervisors' Cases page (12345 工单) in Chromium, by keyboard alone: open cases listed with
the follow-up due first and their labels in Chinese, and the hotline calls agents handed on; one
closed with a note, said in the live region and gone from the list (audited); a case already
closed elsewhere is said in an alert with the field marked; axe-clean throughout."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from agents.transfer.models import Transfer
from core.audit import AuditEntry
from core.auth import service
from core.auth.models import Role
from core.db import Database
from hotline.cases import close_case, save_case
from hotline.models import InboundCallRecord
from tests.e2e.a11y import assert_accessible
from tests.e2e.test_agent_profiles_page import tab_to
from tests.e2e.test_console import sign_in_by_keyboard
from tests.utils.live_server import LiveServer

pytestmark = [pytest.mark.e2e, pytest.mark.browser_locale("en-US")]  # reads the English texts
PW = "correct horse battery"
AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
CASE = {"category": "complaint", "summary": "路灯不亮", "status": "handed_off", "department": "housing"}


@pytest.fixture
def cases(db: Database) -> tuple[int, int]:
    with db.session() as s:
        service.create_user(s, "boss", Role.supervisor, PW, actor="test")
        later = save_case(
            s, call_ref="c-1", line="community-hotline", agent="mei", now=AT,
            answers=CASE | {"follow_up_date": "2026-12-20"},
        )  # fmt: skip
        sooner = save_case(
            s, call_ref="c-2", line="community-hotline", agent="mei", now=AT,
            answers=CASE | {"summary": "噪音扰民，电话13800138000", "follow_up_date": "2026-12-05"},
        )  # fmt: skip
        # an inbound call mei handed to the district office (the line lists it)
        s.add(InboundCallRecord(channel_id="in-1", number="12345", line="community-hotline", arrived_at=AT,
                                outcome="agent", agent="mei", queued=True))  # fmt: skip
        s.add(Transfer(id="x-in", call_ref="in-1", from_agent="mei", kind="number", mode="attended",
                       target="区民政局", state="completed", result="answered", requested_at=AT))  # fmt: skip
        return sooner.id, later.id


def test_supervisor_closes_a_case_by_keyboard(
    page: Page, live_server: LiveServer, cases: tuple[int, int], db: Database
) -> None:
    sooner, later = cases
    sign_in_by_keyboard(page, live_server, "boss", PW)
    tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Cases"))
    page.keyboard.press("Enter")
    table = page.locator("#cases-table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_id(f"case-{sooner}")  # the follow-up due first
    expect(rows.nth(0)).to_contain_text("投诉")
    expect(rows.nth(0)).to_contain_text("住建局")
    expect(rows.nth(0)).to_contain_text("138****8000")
    assert "13800138000" not in page.content()
    handed_on = page.locator("#inbound-transfers tbody tr")
    expect(handed_on).to_have_count(1)  # inbound calls' transfers are shown here
    expect(handed_on.nth(0)).to_contain_text("community-hotline")
    expect(handed_on.nth(0)).to_contain_text(
        "to an outside number: The transfer is complete: 区民政局 has the caller."
    )
    assert_accessible(page)

    tab_to(page, page.locator(f"#note-{sooner}"))
    page.keyboard.type("已协调环保部门处理")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_contain_text(f"{sooner}")
    expect(rows).to_have_count(1)
    expect(page.locator("#closed-table")).to_contain_text("已协调环保部门处理")
    assert_accessible(page)

    with db.session() as s:  # closed by someone else meanwhile
        close_case(s, later, actor="lan", now=AT)
    tab_to(page, page.locator(f"#note-{later}"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("lan")
    expect(page.locator(f"#case-{later}")).to_have_count(0)  # no longer open: gone from the list
    with db.session() as s:
        closes = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "case.close")))
        assert [(e.actor, e.target) for e in closes] == [("boss", str(sooner)), ("lan", str(later))]
