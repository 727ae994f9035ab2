"""The reviewer's pages (/console/reviews) and the agent's (/console/my-reviews).

Reviewers see the queue (random sample and targeted queue apart), claim a call, listen to it with
the two sides' speech timeline, and fill the scorecard. Agents read their completed reviews and
acknowledge them. Every page works without JavaScript; with it, forms answer in the live region.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep
from core.formats import clock
from core.i18n import _
from recordings import service as recordings
from recordings.qa import reviews
from recordings.qa import service as qa_service
from recordings.qa.models import QaItem, ReviewState
from recordings.qa.sampling import SamplingError, reason_text
from recordings.qa.scorecards import Scorecard
from warmline.console.nav import SECTIONS, Section
from warmline.console.pages import render

router = APIRouter(include_in_schema=False)
ReviewerPage = Annotated[User, Depends(Roles(Role.qa, page=True))]
AgentPage = Annotated[User, Depends(Roles(Role.agent, page=True))]


def _section(path: str) -> Section | None:
    return next((s for s in SECTIONS if s.path == path), None)


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


_clock = clock


def _queue_page(
    request: Request, session: Session, user: User, status: str = "", code: int = 200
) -> HTMLResponse:
    items = reviews.queue(session, user.name)
    page = render(
        request,
        "reviews.html",
        _("Reviews"),
        user,
        section=_section("/console/reviews"),
        random_items=[i for i in items if i["sample_kind"] == "random"],
        targeted_items=[i for i in items if i["sample_kind"] == "targeted"],
        status=status,
    )
    page.status_code = code
    return page


@router.get("/console/reviews")
def queue_page(request: Request, session: SessionDep, user: ReviewerPage) -> HTMLResponse:
    return _queue_page(request, session, user)


@router.post("/console/reviews/sample")
async def draw_sample(
    request: Request, session: SessionDep, settings: SettingsDep, user: ReviewerPage
) -> Response:
    form = await request.form()
    period = str(form.get("period", "")).strip()
    seed_text = str(form.get("seed", "")).strip()
    try:
        seed = int(seed_text) if seed_text else None
    except ValueError:
        return _queue_page(
            request, session, user, _("Seed '{seed}': give a whole number.", seed=seed_text), 422
        )
    try:
        result = qa_service.draw_sample(session, settings, period, seed=seed, actor=user.name).to_dict()
    except SamplingError as exc:
        return _queue_page(request, session, user, _("Not drawn: {reason}", reason=exc), 422)
    counts = {
        "period": result["period"],
        "seed": result["seed"],
        "random": result["counts"]["random"],
        "targeted": result["counts"]["targeted"],
        "population": result["population"],
    }
    if result["created"]:
        status = _(
            "Drawn: sample {period} (seed {seed}), {random} random and {targeted} targeted calls of {population}.",
            **counts,
        )
    else:
        status = _(
            "Already drawn: sample {period} (seed {seed}), {random} random and {targeted} targeted calls of"
            " {population}.",
            **counts,
        )
    return _queue_page(request, session, user, status)


@router.post("/console/reviews/items/{item_id}/claim")
def claim(item_id: int, request: Request, session: SessionDep, user: ReviewerPage) -> Response:
    try:
        review = reviews.claim(session, item_id, user.name)
    except reviews.ReviewError as exc:
        return _queue_page(request, session, user, _("Not claimed: {reason}", reason=exc), exc.status)
    return RedirectResponse(f"/console/reviews/{review.id}", status_code=303)


def _timeline(analytics: dict[str, Any] | None) -> dict[str, Any] | None:
    """Speech segments per side, as SVG boxes (viewBox 1000 wide) and as rows for the table."""
    if not analytics:
        return None
    duration = float(analytics.get("duration_s") or 0.0)
    if duration <= 0:
        return None
    segs = analytics.get("segments") or {}
    if analytics.get("channels") == 1:
        segs = {"agent": analytics.get("mono_segments") or [], "customer": []}
    lanes = {"agent": 8, "customer": 38}
    boxes, rows = [], []
    for side in ("agent", "customer"):
        for start, end in segs.get(side) or []:
            x = 1000 * start / duration
            boxes.append(
                {
                    "side": side,
                    "x": round(x, 2),
                    "y": lanes[side],
                    "w": round(max(1.0, 1000 * (end - start) / duration), 2),
                }
            )
            rows.append(
                {
                    "side": side,
                    "start": start,
                    "end": end,
                    "clock": _clock(start),
                    "length": round(end - start, 1),
                }
            )
    over = [
        {"x": round(1000 * s / duration, 2), "w": round(max(1.0, 1000 * (e - s) / duration), 2)}
        for s, e in analytics.get("overtalk_segments") or []
    ]
    rows.sort(key=lambda r: (r["start"], r["side"]))
    ticks = [{"x": round(1000 * t / duration, 2), "label": _clock(t)} for t in _tick_times(duration)]
    return {"duration": duration, "boxes": boxes, "rows": rows, "overtalk": over, "ticks": ticks}


def _tick_times(duration: float) -> list[float]:
    step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600) if duration / s <= 10), 1200)
    return [float(t) for t in range(0, int(duration) + 1, step)]


def _review_page(
    request: Request, session: Session, user: User, review_id: int, status: str = "", code: int = 200
) -> HTMLResponse:
    try:
        review = reviews._review(session, review_id)
    except reviews.ReviewError:
        return _queue_page(request, session, user, _("Review {id}: not found.", id=review_id), 404)
    if review.reviewer != user.name:
        return _queue_page(request, session, user, _("Review {id} is another reviewer's.", id=review_id), 403)
    rec = recordings.get_recording(session, review.recording_id)
    item = session.get(QaItem, review.item_id)
    card = Scorecard.model_validate(review.scorecard_spec)
    figures = rec.analytics or {}
    unknown = _("Review of a call by an unknown agent")
    title = _("Review of a call by {agent}", agent=rec.agent) if rec.agent else unknown
    page = render(
        request,
        "review.html",
        title,
        user,
        section=_section("/console/reviews"),
        review=review,
        rec=rec,
        item=item,
        reason_text=reason_text(item.reason) if item is not None else "",
        card=card,
        figures=figures,
        timeline=_timeline(rec.analytics),
        completed=review.state is ReviewState.completed,
        answers=review.answers or {},
        item_comments=review.item_comments or {},
        status=status,
    )
    page.status_code = code
    return page


@router.get("/console/reviews/{review_id}")
def review_page(review_id: int, request: Request, session: SessionDep, user: ReviewerPage) -> HTMLResponse:
    return _review_page(request, session, user, review_id)


@router.post("/console/reviews/{review_id}")
async def submit_review(
    review_id: int, request: Request, session: SessionDep, user: ReviewerPage
) -> Response:
    form = await request.form()
    answers = {k[2:]: str(v) for k, v in form.items() if k.startswith("a:")}
    notes = {k[2:]: str(v) for k, v in form.items() if k.startswith("c:")}
    comment = str(form.get("comment", ""))
    try:
        review = reviews.complete(session, review_id, user.name, answers, notes, comment)
    except reviews.ReviewError as exc:
        message = _("Not submitted: {reason}", reason=exc)
        if _wants_json(request):
            return JSONResponse({"ok": False, "message": message}, status_code=exc.status)
        return _review_page(request, session, user, review_id, message, exc.status)
    score = f"{review.score:.1f}"
    message = (
        _("Review submitted: score {score} of 100 (auto-fail).", score=score)
        if review.auto_failed
        else _("Review submitted: score {score} of 100.", score=score)
    )
    if _wants_json(request):
        return JSONResponse({"ok": True, "message": message, "score": review.score})
    return _review_page(request, session, user, review_id, message)


# --- the agent's page -------------------------------------------------------------------------


def _mine_page(request: Request, session: Session, user: User, status: str = "") -> HTMLResponse:
    return render(
        request,
        "my_reviews.html",
        _("My reviews"),
        user,
        section=_section("/console/my-reviews"),
        reviews=reviews.agent_reviews(session, user.name),
        status=status,
    )


@router.get("/console/my-reviews")
def my_reviews(request: Request, session: SessionDep, user: AgentPage) -> HTMLResponse:
    return _mine_page(request, session, user)


@router.post("/console/my-reviews/{review_id}/acknowledge")
def acknowledge(review_id: int, request: Request, session: SessionDep, user: AgentPage) -> Response:
    try:
        reviews.acknowledge(session, review_id, user.name)
    except reviews.ReviewError as exc:
        if _wants_json(request):
            return JSONResponse({"ok": False, "message": str(exc)}, status_code=exc.status)
        return _mine_page(request, session, user, _("Not acknowledged: {reason}", reason=exc))
    message = _("Review acknowledged. Thank you.")
    if _wants_json(request):
        return JSONResponse({"ok": True, "message": message})
    return _mine_page(request, session, user, message)
