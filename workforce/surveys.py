"""The post-call survey's answers as supervisors and QA read them: the scores of a period with the
address of each recorded comment (``GET /api/workforce/surveys``; the audio through
``GET /api/workforce/surveys/{id}/comment``, decrypted as it streams, every play audited)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.models import CallSurvey


def surveys_between(session: Session, first: date, last: date) -> Sequence[CallSurvey]:
    """The scores answered from `first` to `last` (UTC days, both included), newest first."""
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    stmt = (
        select(CallSurvey)
        .where(CallSurvey.answered_at >= start, CallSurvey.answered_at < end)
        .order_by(CallSurvey.answered_at.desc(), CallSurvey.id.desc())
    )
    return session.scalars(stmt).all()


def survey_row(row: CallSurvey) -> dict[str, Any]:
    comment = f"/api/workforce/surveys/{row.id}/comment" if row.comment_recording else None
    return {
        "id": row.id,
        "call_ref": row.call_ref,
        "agent": row.agent,
        "line": row.line,
        "campaign": row.campaign,
        "score": row.score,
        "answered_at": row.answered_at.isoformat(),
        "comment_url": comment,
    }
