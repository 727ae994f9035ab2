"""Reviews: claim a queue item, score it against its scorecard, complete; calibration; feedback.

- An item needs one review, or two for blind double scoring (calibration). A reviewer claims it
  (a second reviewer may claim a calibration item), scores it and completes the review.
- Blind: while a calibration item still waits for a review, no reviewer sees another's answers or
  score; once both are complete, both are visible, and agreement can be measured.
- Agents see their own completed reviews (a calibration item's once both are complete) and
  acknowledge them; both are audited.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.audit import audit
from core.db import utcnow
from core.i18n import _
from recordings.models import CallRecording
from recordings.qa import scorecards
from recordings.qa.models import ItemStatus, QaItem, QaReview, QaSample, ReviewState, SampleKind
from recordings.qa.scorecards import ItemType, Scorecard


class ReviewError(Exception):
    """A review action that cannot be done; `status` is the HTTP status that fits, `code` the
    stable code for programs, the message in the current locale."""

    def __init__(self, message: str, status: int = 409, code: str = "conflict") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _item(session: Session, item_id: int) -> QaItem:
    item = session.get(QaItem, item_id)
    if item is None:
        raise ReviewError(_("queue item {id}: not found", id=item_id), 404, "no_such_item")
    return item


def _review(session: Session, review_id: int) -> QaReview:
    review = session.get(QaReview, review_id)
    if review is None:
        raise ReviewError(_("review {id}: not found", id=review_id), 404, "no_such_review")
    return review


def reviews_of(session: Session, item_id: int) -> list[QaReview]:
    return list(session.scalars(select(QaReview).where(QaReview.item_id == item_id).order_by(QaReview.id)))


def _refresh_status(session: Session, item: QaItem) -> None:
    reviews = reviews_of(session, item.id)
    done = sum(r.state is ReviewState.completed for r in reviews)
    if done >= item.reviewers_needed:
        item.status = ItemStatus.done
    elif len(reviews) >= item.reviewers_needed:
        item.status = ItemStatus.claimed
    else:
        item.status = ItemStatus.open


def claim(session: Session, item_id: int, reviewer: str) -> QaReview:
    """Claim an item for `reviewer` (again: the same review). Refused when it needs nobody else."""
    from recordings.qa.service import scorecard_for

    item = _item(session, item_id)
    reviews = reviews_of(session, item_id)
    mine = next((r for r in reviews if r.reviewer == reviewer), None)
    if mine is not None:
        return mine
    rec = session.get(CallRecording, item.recording_id)
    if rec is not None and rec.agent == reviewer:
        raise ReviewError(_("nobody reviews their own call"), 403, "own_call")
    if len(reviews) >= item.reviewers_needed:
        who = ", ".join(r.reviewer for r in reviews)
        raise ReviewError(
            _("queue item {id} is already claimed by {who}", id=item_id, who=who), code="claimed"
        )
    name = scorecard_for(rec)
    card = scorecards.load(name)
    review = QaReview(
        item_id=item.id,
        recording_id=item.recording_id,
        agent=item.agent,
        reviewer=reviewer,
        scorecard=card.name,
        scorecard_spec=card.model_dump(mode="json"),
    )
    session.add(review)
    session.flush()
    _refresh_status(session, item)
    audit(
        session, reviewer, "qa.review.claim", str(review.id), item_id=item.id, recording_id=item.recording_id
    )
    return review


def release(session: Session, review_id: int, reviewer: str) -> None:
    """Give back a claimed (not completed) review, so someone else can take the item."""
    review = _review(session, review_id)
    if review.reviewer != reviewer:
        raise ReviewError(_("only the reviewer who claimed it can release it"), 403, "not_yours")
    if review.state is ReviewState.completed:
        raise ReviewError(_("a completed review cannot be released"), code="completed")
    item = _item(session, review.item_id)
    session.delete(review)
    session.flush()
    _refresh_status(session, item)
    audit(session, reviewer, "qa.review.release", str(review_id), item_id=item.id)


def card_of(review: QaReview) -> Scorecard:
    return Scorecard.model_validate(review.scorecard_spec)


def complete(
    session: Session,
    review_id: int,
    reviewer: str,
    answers: dict[str, Any],
    item_comments: dict[str, str] | None = None,
    comment: str | None = None,
) -> QaReview:
    review = _review(session, review_id)
    if review.reviewer != reviewer:
        raise ReviewError(_("only the reviewer who claimed it can complete it"), 403, "not_yours")
    if review.state is ReviewState.completed:
        raise ReviewError(_("review {id} is already complete", id=review_id), code="completed")
    card = card_of(review)
    try:
        given = scorecards.normalise(card, answers)
        result = scorecards.score(card, given)
    except scorecards.ScorecardError as exc:
        raise ReviewError(str(exc), 422, "bad_answers") from exc
    keys = {i.key for i in card.items()}
    review.answers = given
    review.item_comments = {k: v.strip() for k, v in (item_comments or {}).items() if k in keys and v.strip()}
    review.comment = (comment or "").strip() or None
    review.score = result.score
    review.auto_failed = result.auto_failed
    review.breakdown = result.model_dump()
    review.state = ReviewState.completed
    review.completed_at = utcnow()
    session.flush()
    _refresh_status(session, _item(session, review.item_id))
    audit(
        session,
        reviewer,
        "qa.review.complete",
        str(review.id),
        score=result.score,
        auto_failed=result.auto_failed,
    )
    return review


def item_complete(session: Session, item: QaItem) -> bool:
    return item.status is ItemStatus.done


def review_dict(review: QaReview, *, show_scores: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "review_id": review.id,
        "item_id": review.item_id,
        "recording_id": review.recording_id,
        "agent": review.agent,
        "reviewer": review.reviewer,
        "scorecard": review.scorecard,
        "state": review.state.value,
        "claimed_at": review.claimed_at.isoformat(),
        "completed_at": review.completed_at.isoformat() if review.completed_at else None,
        "acknowledged_at": review.acknowledged_at.isoformat() if review.acknowledged_at else None,
    }
    if show_scores:
        d.update(
            answers=review.answers,
            item_comments=review.item_comments,
            comment=review.comment,
            score=review.score,
            auto_failed=review.auto_failed,
            breakdown=review.breakdown,
        )
    else:
        d["hidden"] = "blind double scoring: shown once every review of this call is complete"
    return d


def view_item(session: Session, item_id: int, viewer: str, is_admin: bool = False) -> dict[str, Any]:
    """An item and its reviews as `viewer` may see them (blind until the item is done)."""
    from recordings.qa.service import item_dict

    item = _item(session, item_id)
    done = item.status is ItemStatus.done
    reviews = [
        review_dict(r, show_scores=done or r.reviewer == viewer or (is_admin and item.reviewers_needed == 1))
        for r in reviews_of(session, item_id)
    ]
    return {**item_dict(item), "reviews": reviews}


def view_review(session: Session, review_id: int, viewer: str) -> dict[str, Any]:
    review = _review(session, review_id)
    item = _item(session, review.item_id)
    if review.reviewer != viewer and item.status is not ItemStatus.done:
        return review_dict(review, show_scores=False)
    return review_dict(review)


def queue(session: Session, reviewer: str, *, include_done: bool = False) -> list[dict[str, Any]]:
    """Items a reviewer can work on: open ones, ones they claimed, calibration items needing a second
    reviewer (not ones they already scored). Newest sample first, random before targeted."""
    from recordings.qa.service import item_dict

    rows = session.execute(
        select(QaItem, QaSample.period)
        .join(QaSample, QaSample.id == QaItem.sample_id)
        .order_by(QaSample.id.desc(), QaItem.sample_kind, QaItem.id)
    ).all()
    reviews: dict[int, list[QaReview]] = defaultdict(list)
    for r in session.scalars(select(QaReview)):
        reviews[r.item_id].append(r)
    out = []
    for item, period in rows:
        mine = next((r for r in reviews[item.id] if r.reviewer == reviewer), None)
        if item.status is ItemStatus.done and not include_done and mine is None:
            continue
        if mine is None and len(reviews[item.id]) >= item.reviewers_needed:
            continue  # someone else's
        if mine is not None and mine.state is ReviewState.completed and not include_done:
            continue
        out.append(
            {
                **item_dict(item),
                "period": period,
                "claimed_by_me": mine is not None,
                "my_review_id": mine.id if mine else None,
                "reviews_claimed": len(reviews[item.id]),
            }
        )
    return out


# --- agents' feedback -------------------------------------------------------------------------


def agent_reviews(session: Session, agent: str) -> list[dict[str, Any]]:
    """An agent's completed reviews (a calibration item's only once every review of it is done)."""
    rows = session.execute(
        select(QaReview, QaItem)
        .join(QaItem, QaItem.id == QaReview.item_id)
        .where(QaReview.agent == agent, QaReview.state == ReviewState.completed)
        .order_by(QaReview.completed_at.desc(), QaReview.id.desc())
    ).all()
    out = []
    for review, item in rows:
        if item.status is not ItemStatus.done:
            continue
        d = review_dict(review)
        d["sample_kind"] = item.sample_kind.value
        spec = review.scorecard_spec
        d["scorecard_title"] = scorecards.say(spec.get("title", review.scorecard))
        d["item_texts"] = {
            item["key"]: scorecards.say(item["text"])
            for section in spec.get("sections", [])
            for item in section.get("items", [])
        }
        out.append(d)
    return out


def acknowledge(session: Session, review_id: int, agent: str) -> QaReview:
    review = _review(session, review_id)
    item = _item(session, review.item_id)
    if (
        review.agent != agent
        or review.state is not ReviewState.completed
        or item.status is not ItemStatus.done
    ):
        raise ReviewError(
            _("review {id}: not one of your completed reviews", id=review_id), 404, "no_such_review"
        )
    if review.acknowledged_at is None:
        review.acknowledged_at = utcnow()
        audit(session, agent, "qa.review.acknowledge", str(review.id), recording_id=review.recording_id)
    return review


# --- agreement (calibration) ------------------------------------------------------------------


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels; None when undefined (no pairs, or chance agreement 1)."""
    n = len(pairs)
    if n == 0:
        return None
    labels = sorted({a for a, _ in pairs} | {b for _, b in pairs})
    observed = sum(a == b for a, b in pairs) / n
    expected = sum(
        (sum(a == lab for a, _ in pairs) / n) * (sum(b == lab for _, b in pairs) / n) for lab in labels
    )
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(session: Session, period: str | None = None) -> dict[str, Any]:
    """Agreement of blind double scoring: per item and overall percent agreement, and Cohen's kappa
    over the yes/no items' yes/no answers (pairs where either said "na" are left out of kappa).

    The two reviews of a call are taken in the order they were claimed (first, second reviewer)."""
    q = (
        select(QaItem)
        .join(QaSample, QaSample.id == QaItem.sample_id)
        .where(QaItem.reviewers_needed == 2, QaItem.status == ItemStatus.done)
    )
    if period is not None:
        q = q.where(QaSample.period == period)
    per_item: dict[str, dict[str, Any]] = {}
    all_pairs: list[tuple[str, str]] = []
    yes_no_pairs: list[tuple[str, str]] = []
    score_gaps: list[float] = []
    calls = 0
    for item in session.scalars(q):
        reviews = [r for r in reviews_of(session, item.id) if r.state is ReviewState.completed][:2]
        if len(reviews) < 2 or reviews[0].scorecard != reviews[1].scorecard:
            continue
        calls += 1
        first, second = reviews
        score_gaps.append(abs((first.score or 0.0) - (second.score or 0.0)))
        card = card_of(first)
        for it in card.items():
            a, b = str((first.answers or {}).get(it.key)), str((second.answers or {}).get(it.key))
            key = f"{card.name}.{it.key}"
            entry = per_item.setdefault(
                key, {"item": key, "text": scorecards.say(it.text), "type": it.type.value, "pairs": []}
            )
            entry["pairs"].append((a, b))
            all_pairs.append((a, b))
            if it.type is ItemType.yes_no and a != "na" and b != "na":
                yes_no_pairs.append((a, b))
    items_out = []
    for entry in per_item.values():
        pairs = entry.pop("pairs")
        yn = [(a, b) for a, b in pairs if a != "na" and b != "na"]
        kappa = cohen_kappa(yn) if entry["type"] == "yes_no" else None
        items_out.append(
            {
                **entry,
                "n": len(pairs),
                "agreement": round(sum(a == b for a, b in pairs) / len(pairs), 3),
                "kappa": round(kappa, 3) if kappa is not None else None,
            }
        )
    kappa_all = cohen_kappa(yes_no_pairs)
    return {
        "period": period,
        "calls": calls,
        "answers": len(all_pairs),
        "agreement": round(sum(a == b for a, b in all_pairs) / len(all_pairs), 3) if all_pairs else None,
        "kappa_yes_no": round(kappa_all, 3) if kappa_all is not None else None,
        "mean_score_gap": round(sum(score_gaps) / len(score_gaps), 1) if score_gaps else None,
        "items": items_out,
    }


def averages(session: Session, period: str | None = None) -> dict[str, Any]:
    """Mean scores per agent: the random sample's (the fair figure) and the targeted queue's apart."""
    q = (
        select(QaReview.agent, QaItem.sample_kind, func.avg(QaReview.score), func.count(QaReview.id))
        .join(QaItem, QaItem.id == QaReview.item_id)
        .join(QaSample, QaSample.id == QaItem.sample_id)
        .where(QaReview.state == ReviewState.completed)
        .group_by(QaReview.agent, QaItem.sample_kind)
    )
    if period is not None:
        q = q.where(QaSample.period == period)
    out: dict[str, dict[str, Any]] = {}
    for agent, kind, avg, n in session.execute(q):
        row = out.setdefault(agent or "-", {"agent": agent, "random": None, "targeted": None})
        row[SampleKind(kind).value] = {"mean_score": round(float(avg), 1), "reviews": int(n)}
    return {"period": period, "agents": sorted(out.values(), key=lambda r: r["agent"] or "")}
