"""The post-call survey: after the agent hangs up, the caller presses 1-5 to rate the service.

The hand-over keeps the caller's channel when asked (``HandoverRequest.keep_caller``); the line's or
campaign's service then runs the ``post_call_survey`` flow (config/ivr/post_call_survey.yaml) on it
with :func:`run_survey` and stores the score with :func:`save_score` in ``call_surveys``, linked to
the call, the agent and the line or campaign. The workforce reports read the scores.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.flow import Flow
from ivr.models import CallSurvey
from ivr.runner import EventSource, FlowResult, FlowRunner

SURVEY_FLOW = "post_call_survey"
SURVEY_NODE = "rate"
SCORES = range(1, 6)


def score_of(result: FlowResult) -> int | None:
    """The caller's score from the survey flow's result (None: no valid key)."""
    entry = result.digits.get(SURVEY_NODE, "")
    return int(entry) if entry.isdigit() and int(entry) in SCORES else None


async def run_survey(runner: FlowRunner, channel_id: str, flow: Flow, events: EventSource) -> int | None:
    """Play the survey on the caller's channel (still in Stasis) and return the score pressed."""
    return score_of(await runner.run(channel_id, flow, {}, events))


def save_score(
    session: Session,
    *,
    call_ref: str,
    score: int,
    agent: str | None,
    line: str | None = None,
    campaign: str | None = None,
    now: datetime,
) -> CallSurvey:
    """Store the score (once per call: a repeat returns the stored one)."""
    if score not in SCORES:
        raise ValueError(f"score {score}: 1 to 5")
    found = session.scalar(select(CallSurvey).where(CallSurvey.call_ref == call_ref))
    if found is not None:
        return found
    row = CallSurvey(
        call_ref=call_ref, agent=agent, line=line, campaign=campaign, score=score, answered_at=now
    )
    session.add(row)
    session.flush()
    return row
