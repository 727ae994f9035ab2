"""Inbound calls that agents handed on (to a colleague, a queue or an outside number), for the
supervisors' page: every transfer of a call that is not a campaign's attempt, newest first, with
the call's line once the call is over (a live call's line is not stored yet)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.transfer.models import Transfer
from dialer.models import Attempt
from hotline.models import InboundCallRecord


@dataclass(frozen=True)
class InboundTransfer:
    call_ref: str
    line: str | None
    from_agent: str
    kind: str
    mode: str
    target: str  # an outside number masked, a colleague's name or a skill as it is
    outcome: str  # the result code, or the state while it is under way
    at: datetime


def inbound_transfers(session: Session, limit: int = 20) -> list[InboundTransfer]:
    """The latest `limit` transfers of inbound calls."""
    campaign_call = select(Attempt.id).where(Attempt.id == Transfer.call_ref).exists()
    stmt = (
        select(Transfer, InboundCallRecord.line)
        .outerjoin(InboundCallRecord, InboundCallRecord.channel_id == Transfer.call_ref)
        .where(~campaign_call)
        .order_by(Transfer.requested_at.desc(), Transfer.id.desc())
        .limit(limit)
    )
    return [
        InboundTransfer(
            call_ref=row.call_ref,
            line=line,
            from_agent=row.from_agent,
            kind=row.kind,
            mode=row.mode,
            target=row.target,
            outcome=row.result or row.state,
            at=row.requested_at,
        )
        for row, line in session.execute(stmt)
    ]
