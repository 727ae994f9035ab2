"""Practice calls put up for scoring: a trainer scores a practice recording with the QA scorecards.

The item goes into the queue of the one standing sample ``practice`` (a container, never drawn),
as ``sample_kind = practice``: claimed, scored, acknowledged like any item, and its scores are kept
apart from the random sample's in the averages, so a trainee's practice never counts as a real call.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.i18n import _
from recordings.models import CallRecording
from recordings.qa.models import QaItem, QaSample, SampleKind
from recordings.qa.reviews import ReviewError
from recordings.qa.sampling import reason_text

PRACTICE_PERIOD = "practice"
_FOREVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _practice_sample(session: Session, actor: str) -> QaSample:
    sample = session.scalar(select(QaSample).where(QaSample.period == PRACTICE_PERIOD, QaSample.seed == 0))
    if sample is None:
        sample = QaSample(
            period=PRACTICE_PERIOD,
            seed=0,
            starts_at=_FOREVER[0],
            ends_at=_FOREVER[1],
            params={"practice": True},
            population=0,
            created_by=actor,
        )
        session.add(sample)
        session.flush()
    return sample


def put_up_practice(session: Session, recording_id: str, *, scenario: str, actor: str) -> QaItem:
    """Put a practice recording into the QA queue (again: the same item). Only practice calls."""
    rec = session.get(CallRecording, recording_id)
    if rec is None or not rec.practice:
        raise ReviewError(_("{id} is not a practice recording", id=recording_id), 404, "not_practice")
    sample = _practice_sample(session, actor)
    found = session.scalar(
        select(QaItem).where(QaItem.sample_id == sample.id, QaItem.recording_id == recording_id)
    )
    if found is not None:
        return found
    reason = {"practice": True, "scenario": scenario, "by": actor}
    item = QaItem(
        sample_id=sample.id,
        recording_id=recording_id,
        sample_kind=SampleKind.practice,
        agent=rec.agent,
        campaign_id=None,
        stratum=f"{rec.agent or '-'} × {PRACTICE_PERIOD}",
        reason=reason,
        reason_text=reason_text(reason)[:500],
    )
    session.add(item)
    session.flush()
    audit(session, actor, "qa.practice.put_up", str(item.id), recording_id=recording_id, scenario=scenario)
    return item
