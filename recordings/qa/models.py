"""QA tables: a period's sample, its queue items (random or targeted) and the reviews of them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


def _enum(cls: type[enum.StrEnum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True)


class SampleKind(enum.StrEnum):
    random = "random"  # drawn by the stratified sample: counts in the averages
    targeted = "targeted"  # picked by a rule (short call, dead air, ...): kept out of the averages
    practice = "practice"  # a practice call a trainer put up for scoring: never a real call's figure


class ItemStatus(enum.StrEnum):
    open = "open"  # nobody has claimed it (or not every reviewer it needs)
    claimed = "claimed"  # every reviewer it needs has claimed it; not all have completed
    done = "done"  # every review it needs is complete


class ReviewState(enum.StrEnum):
    claimed = "claimed"
    completed = "completed"


class QaSample(Base):
    """One draw for one period and seed: drawing it again returns this one, unchanged."""

    __tablename__ = "qa_samples"
    __table_args__ = (UniqueConstraint("period", "seed", name="uq_qa_samples_period_seed"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(32))  # "2026-W48" or "2026-11-01..2026-11-07"
    seed: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # rate, minimum, cap, rules: as drawn
    population: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class QaItem(Base):
    """A recording to review, and why it was picked."""

    __tablename__ = "qa_items"
    __table_args__ = (
        UniqueConstraint("sample_id", "recording_id", "sample_kind", name="uq_qa_items_pick"),
        Index("ix_qa_items_queue", "status", "sample_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qa_samples.id", ondelete="CASCADE"), index=True)
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("call_recordings.id", ondelete="CASCADE"), index=True
    )
    sample_kind: Mapped[SampleKind] = mapped_column(_enum(SampleKind))
    agent: Mapped[str | None] = mapped_column(String(64), index=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    stratum: Mapped[str] = mapped_column(String(160))  # "agent × campaign", as shown to people
    reason: Mapped[dict[str, Any]] = mapped_column(JSON)  # the pick's explanation, machine-readable
    reason_text: Mapped[str] = mapped_column(String(500))  # the same, for people
    reviewers_needed: Mapped[int] = mapped_column(Integer, default=1)  # 2: blind double scoring
    status: Mapped[ItemStatus] = mapped_column(_enum(ItemStatus), default=ItemStatus.open)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaReview(Base):
    """One reviewer's scoring of one item against one scorecard (kept as it was when claimed)."""

    __tablename__ = "qa_reviews"
    __table_args__ = (UniqueConstraint("item_id", "reviewer", name="uq_qa_reviews_item_reviewer"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("qa_items.id", ondelete="CASCADE"), index=True)
    recording_id: Mapped[str] = mapped_column(String(36), index=True)
    agent: Mapped[str | None] = mapped_column(String(64), index=True)  # whose call it was
    reviewer: Mapped[str] = mapped_column(String(64), index=True)
    scorecard: Mapped[str] = mapped_column(String(64))
    scorecard_spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the card as claimed
    state: Mapped[ReviewState] = mapped_column(_enum(ReviewState), default=ReviewState.claimed)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    answers: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # item key -> "yes"/"no"/"na"/int
    item_comments: Mapped[dict[str, str] | None] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)  # 0-100
    auto_failed: Mapped[bool] = mapped_column(default=False)
    breakdown: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # per section
    acknowledged_at: Mapped[datetime | None]
