"""QA over HTTP: samples, the queue, claiming and completing reviews, calibration, agents' feedback.

POST /api/qa/samples                    qa: draw a period's sample {period, seed?}
GET  /api/qa/queue                      qa: items I can work on (random and targeted labelled)
GET  /api/qa/items/{id}                 qa: an item and its reviews (blind until complete)
POST /api/qa/items/{id}/claim           qa: claim it; returns the review
GET  /api/qa/reviews/{id}               qa: a review (others' scores hidden until the item is done)
POST /api/qa/reviews/{id}/complete      qa: {answers, item_comments?, comment?}
POST /api/qa/reviews/{id}/release       qa: give back a claimed review
GET  /api/qa/agreement                  qa, supervisor: calibration agreement
GET  /api/qa/averages                   qa, supervisor: mean scores, random and targeted apart
GET  /api/qa/scorecards/{name}          qa: a scorecard
GET  /api/qa/my-reviews                 agent: my completed reviews
POST /api/qa/my-reviews/{id}/acknowledge  agent: I have read it
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep
from core.errors import http_error
from core.i18n import _
from recordings.qa import reviews, scorecards
from recordings.qa import service as qa_service
from recordings.qa.sampling import SamplingError

router = APIRouter(prefix="/api/qa", tags=["qa"])
Reviewer = Annotated[User, Depends(Roles(Role.qa))]
Overseer = Annotated[User, Depends(Roles(Role.qa, Role.supervisor))]
Agent = Annotated[User, Depends(Roles(Role.agent))]


class SampleRequest(BaseModel):
    period: str = Field(examples=["2026-W48"])
    seed: int | None = None


class CompleteRequest(BaseModel):
    answers: dict[str, str | int]
    item_comments: dict[str, str] = Field(default_factory=dict)
    comment: str | None = None


def _fail(exc: reviews.ReviewError) -> HTTPException:
    return http_error(exc.status, exc.code, str(exc))


@router.post("/samples", status_code=201)
def draw(body: SampleRequest, session: SessionDep, settings: SettingsDep, user: Reviewer) -> dict[str, Any]:
    try:
        return qa_service.draw_sample(
            session, settings, body.period, seed=body.seed, actor=user.name
        ).to_dict()
    except SamplingError as exc:
        raise http_error(422, "bad_period", str(exc)) from exc


@router.get("/queue")
def queue(session: SessionDep, user: Reviewer) -> list[dict[str, Any]]:
    return reviews.queue(session, user.name)


@router.get("/items/{item_id}")
def item(item_id: int, session: SessionDep, user: Reviewer) -> dict[str, Any]:
    try:
        return reviews.view_item(session, item_id, user.name)
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc


@router.post("/items/{item_id}/claim", status_code=201)
def claim(item_id: int, session: SessionDep, user: Reviewer) -> dict[str, Any]:
    try:
        return reviews.review_dict(reviews.claim(session, item_id, user.name))
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc


@router.get("/reviews/{review_id}")
def review(review_id: int, session: SessionDep, user: Reviewer) -> dict[str, Any]:
    try:
        return reviews.view_review(session, review_id, user.name)
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc


@router.post("/reviews/{review_id}/complete")
def complete(review_id: int, body: CompleteRequest, session: SessionDep, user: Reviewer) -> dict[str, Any]:
    try:
        done = reviews.complete(session, review_id, user.name, body.answers, body.item_comments, body.comment)
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc
    return reviews.review_dict(done)


@router.post("/reviews/{review_id}/release", status_code=204)
def release(review_id: int, session: SessionDep, user: Reviewer) -> None:
    try:
        reviews.release(session, review_id, user.name)
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc


@router.get("/agreement")
def agreement(session: SessionDep, user: Overseer, period: str | None = None) -> dict[str, Any]:
    return reviews.agreement(session, period)


@router.get("/averages")
def averages(session: SessionDep, user: Overseer, period: str | None = None) -> dict[str, Any]:
    return reviews.averages(session, period)


@router.get("/scorecards/{name}")
def scorecard(name: str, user: Reviewer) -> dict[str, Any]:
    if name not in scorecards.available():
        raise http_error(
            404,
            "no_such_scorecard",
            _("scorecard '{name}': not found ({names})", name=name, names=", ".join(scorecards.available())),
        )
    return scorecards.load(name).model_dump(mode="json")


@router.get("/my-reviews")
def my_reviews(session: SessionDep, user: Agent) -> list[dict[str, Any]]:
    return reviews.agent_reviews(session, user.name)


@router.post("/my-reviews/{review_id}/acknowledge")
def acknowledge(review_id: int, session: SessionDep, user: Agent) -> dict[str, Any]:
    try:
        return reviews.review_dict(reviews.acknowledge(session, review_id, user.name))
    except reviews.ReviewError as exc:
        raise _fail(exc) from exc
