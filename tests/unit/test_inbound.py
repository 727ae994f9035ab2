"""The inbound hotline's configuration (opening hours, numbers), the StasisStart it serves, the
callback contacts it records (both databases), and the shipped flows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from core.audit import AuditEntry
from core.db import Database
from dialer.models import Campaign, CampaignKind, Contact, ContactState
from hotline.callbacks import record_callback
from hotline.config import InboundNumber, is_open, load_config
from hotline.service import inbound_number
from ivr.check import check_file

REPO = Path(__file__).resolve().parents[2]
TZ = "Asia/Shanghai"


def local(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def test_shipped_config_and_flows() -> None:
    cfg = load_config(REPO / "config" / "inbound" / "hotline.yaml")
    line = cfg.for_number("12345")
    assert line is not None and line.name == "community-hotline" and line.flow == "hotline_menu"
    assert cfg.for_number("99999") is not None, "unknown numbers get the default line"
    for flow in ("hotline_menu", "after_hours"):
        parsed, problems = check_file(REPO / "config" / "ivr" / f"{flow}.yaml")
        assert parsed is not None and problems == [], problems


def test_opening_hours() -> None:
    line = InboundNumber(
        name="x", hours={"mon-fri": ["08:30-17:30"], "sat": ["09:00-12:00"]}, closed_dates=[date(2026, 10, 1)]
    )
    assert is_open(line, local(2026, 11, 23, 8, 30), TZ)  # Monday
    assert not is_open(line, local(2026, 11, 23, 8, 29), TZ)
    assert not is_open(line, local(2026, 11, 23, 17, 30), TZ), "the end is exclusive"
    assert is_open(line, local(2026, 11, 28, 11, 59), TZ)  # Saturday
    assert not is_open(line, local(2026, 11, 29, 10, 0), TZ)  # Sunday
    assert not is_open(line, local(2026, 10, 1, 10, 0), TZ), "a closed date (National Day)"
    # 01:00 UTC is 09:00 in Shanghai: the local clock decides.
    assert is_open(line, datetime(2026, 11, 23, 1, 0, tzinfo=UTC), TZ)
    wrap = InboundNumber(name="y", hours={"fri-mon": ["10:00-11:00"]})
    assert is_open(wrap, local(2026, 11, 29, 10, 30), TZ) and not is_open(
        wrap, local(2026, 11, 25, 10, 30), TZ
    )


@pytest.mark.parametrize(
    "hours", [{"someday": ["09:00-10:00"]}, {"mon": ["10:00-09:00"]}, {"mon": ["9 to 5"]}]
)
def test_bad_hours_say_what(hours: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        InboundNumber(name="x", hours=hours)


def test_inbound_stasis_start_is_recognised() -> None:
    start = {"type": "StasisStart", "args": ["inbound", "12345"], "channel": {"id": "c1"}}
    assert inbound_number(start) == "12345"
    assert inbound_number({**start, "args": ["agent-leg"]}) is None
    assert inbound_number({**start, "type": "StasisEnd"}) is None
    assert inbound_number({**start, "args": ["inbound", "12;rm"]}) == "12"


def test_callback_contacts(db: Database) -> None:
    with db.session() as s:
        first = record_callback(s, campaign_name="hotline-callbacks", phone="13800138001", hotline="12345",
                                reason="menu")  # fmt: skip
        again = record_callback(s, campaign_name="hotline-callbacks", phone="+86 138 0013 8001", hotline="12345",
                                reason="after_hours", message="ivr-abc")  # fmt: skip
        withheld = record_callback(s, campaign_name="hotline-callbacks", phone="anonymous", hotline="12345",
                                   reason="menu")  # fmt: skip
    assert first is not None and again == first, "one contact per caller, the latest request's details"
    assert withheld is None
    with db.session() as s:
        campaign = s.scalar(select(Campaign).where(Campaign.name == "hotline-callbacks"))
        assert (
            campaign is not None and campaign.kind is CampaignKind.agent and campaign.created_by == "inbound"
        )
        contact = s.get(Contact, first)
        assert contact is not None and contact.phone_e164 == "+8613800138001"
        assert contact.state is ContactState.pending and contact.next_due_at is not None
        assert contact.fields["reason"] == "after_hours" and contact.fields["message"] == "ivr-abc"
        trail = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert trail.count("inbound.callback") == 2 and "inbound.callback.unusable" in trail
        details = [
            e.detail for e in s.scalars(select(AuditEntry).where(AuditEntry.action == "inbound.callback"))
        ]
        assert all(d["phone"] == "138****8001" for d in details)
