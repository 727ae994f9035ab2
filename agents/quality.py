"""Call quality per agent: kept in the database so every API process and the wallboard agree."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.models import CallQualityReport
from core.messages import CallQuality

# Below this MOS estimate a line is "poor" (ITU-T G.107 user-satisfaction bands: 3.6 = some users
# dissatisfied, 3.1 = many); the wallboard flags it.
POOR_MOS = 3.6


def record_quality(session: Session, msg: CallQuality) -> CallQualityReport:
    row = CallQualityReport(
        agent=msg.agent,
        call_ref=msg.call_ref,
        codec=msg.codec,
        jitter_ms=msg.jitter_ms,
        loss_pct=msg.loss_pct,
        rtt_ms=msg.rtt_ms,
        mos=msg.mos,
        final=msg.final,
        at=msg.at,
    )
    session.add(row)
    return row


def latest_per_agent(session: Session) -> list[CallQuality]:
    """The newest report of each agent, worst MOS first, so a bad home line stands out."""
    newest = (
        select(CallQualityReport.agent, func.max(CallQualityReport.id).label("id"))
        .group_by(CallQualityReport.agent)
        .subquery()
    )
    rows = session.scalars(select(CallQualityReport).join(newest, CallQualityReport.id == newest.c.id))
    reports = [
        CallQuality(
            agent=r.agent,
            call_ref=r.call_ref,
            codec=r.codec,
            jitter_ms=r.jitter_ms,
            loss_pct=r.loss_pct,
            rtt_ms=r.rtt_ms,
            mos=r.mos,
            final=r.final,
            at=r.at,
        )
        for r in rows
    ]
    return sorted(reports, key=lambda q: q.mos)
