"""The supervisors' list of inbound calls handed on (both databases): an inbound call's transfers,
newest first, with its line once the call is stored; a campaign call's transfers are not in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agents.transfer.models import Transfer
from core.db import Database
from dialer import campaigns as svc
from dialer.models import Attempt, Contact
from hotline.call_transfers import inbound_transfers
from hotline.models import InboundCallRecord

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def transfer(id_: str, call_ref: str, minutes: int, **kw: object) -> Transfer:
    fields: dict[str, object] = {"kind": "number", "mode": "attended", "target": "区民政局",
                                 "state": "completed", "result": "answered"} | kw  # fmt: skip
    return Transfer(id=id_, call_ref=call_ref, from_agent="mei", requested_at=AT + timedelta(minutes=minutes),
                    **fields)  # fmt: skip


def test_inbound_calls_transfers_newest_first_without_campaign_calls(db: Database) -> None:
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec({"name": "c1", "mode": "preview"}), actor="test")
        contact = Contact(campaign_id=campaign.id, phone_e164="+8613800000009", name="王奶奶")
        s.add(contact)
        s.flush()
        s.add(Attempt(id="att-1", campaign_id=campaign.id, contact_id=contact.id, attempt_no=1, node="lab"))
        s.add(InboundCallRecord(channel_id="in-1", number="12345", line="community-hotline", arrived_at=AT,
                                outcome="agent", agent="mei", queued=True))  # fmt: skip
        s.add_all([
            transfer("x1", "in-1", 1, target="010****0019", state="failed", result="not_allowed"),
            transfer("x2", "in-1", 2),
            transfer("x3", "in-live", 3, kind="agent", target="lin", state="consulting", result=None),
            transfer("x4", "att-1", 4, kind="agent", target="lin"),
        ])  # fmt: skip
    with db.session() as s:
        rows = [(t.call_ref, t.line, t.kind, t.target, t.outcome) for t in inbound_transfers(s)]
    assert rows == [
        ("in-live", None, "agent", "lin", "consulting"),  # under way: the call is not stored yet
        ("in-1", "community-hotline", "number", "区民政局", "answered"),
        ("in-1", "community-hotline", "number", "010****0019", "not_allowed"),
    ]
