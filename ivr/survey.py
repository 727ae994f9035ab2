"""The post-call survey: after the agent hangs up, the caller presses 1-5 to rate the service.

The hand-over keeps the caller's channel when asked (``HandoverRequest.keep_caller``); the line's or
campaign's service then runs the ``post_call_survey`` flow (config/ivr/post_call_survey.yaml) on it
with :func:`run_survey` and stores the score with :func:`save_score` in ``call_surveys``, linked to
the call, the agent and the line or campaign. The workforce reports read the scores.

Where the line or campaign sets ``survey_comment_seconds``, the caller may then leave a short
recorded comment (the flow's ``comment`` record node, that long at most): an IVR voice message
(``ivr-<hex>``, sealed at rest like the others, recordings.at_rest) linked to the score's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.flow import Flow, GatherNode, Node, RecordNode
from ivr.models import CallSurvey
from ivr.runner import EventSource, FlowResult, FlowRunner

SURVEY_FLOW = "post_call_survey"
SURVEY_NODE = "rate"
COMMENT_NODE = "comment"
SCORES = range(1, 6)


@dataclass(frozen=True)
class SurveyAnswer:
    score: int | None  # None: no valid key
    comment: str | None = None  # the recorded comment's name (ivr-<hex>), when one was left


def survey_flow(flow: Flow, comment_seconds: int | None) -> Flow:
    """The survey as the line or campaign wants it: with the recorded comment (at most
    `comment_seconds`) after the score, or the score straight to the thanks."""
    rate, comment = flow.nodes.get(SURVEY_NODE), flow.nodes.get(COMMENT_NODE)
    if not isinstance(rate, GatherNode) or not isinstance(comment, RecordNode) or rate.next != COMMENT_NODE:
        return flow  # a local survey flow without the comment: as it is
    changed: dict[str, Node]
    if comment_seconds:
        changed = {COMMENT_NODE: comment.model_copy(update={"max_seconds": comment_seconds})}
    else:
        changed = {SURVEY_NODE: rate.model_copy(update={"next": comment.next})}
    return flow.model_copy(update={"nodes": {**flow.nodes, **changed}})


def score_of(result: FlowResult) -> int | None:
    """The caller's score from the survey flow's result (None: no valid key)."""
    entry = result.digits.get(SURVEY_NODE, "")
    return int(entry) if entry.isdigit() and int(entry) in SCORES else None


async def run_survey(runner: FlowRunner, channel_id: str, flow: Flow, events: EventSource) -> SurveyAnswer:
    """Play the survey on the caller's channel (still in Stasis): the score pressed and the comment."""
    result = await runner.run(channel_id, flow, {}, events)
    score = score_of(result)
    return SurveyAnswer(score, result.recording if score is not None else None)


def save_score(
    session: Session,
    *,
    call_ref: str,
    score: int,
    agent: str | None,
    line: str | None = None,
    campaign: str | None = None,
    comment: str | None = None,
    now: datetime,
) -> CallSurvey:
    """Store the score (once per call: a repeat returns the stored one)."""
    if score not in SCORES:
        raise ValueError(f"score {score}: 1 to 5")
    found = session.scalar(select(CallSurvey).where(CallSurvey.call_ref == call_ref))
    if found is not None:
        return found
    row = CallSurvey(
        call_ref=call_ref,
        agent=agent,
        line=line,
        campaign=campaign,
        score=score,
        comment_recording=comment,
        answered_at=now,
    )
    session.add(row)
    session.flush()
    return row
