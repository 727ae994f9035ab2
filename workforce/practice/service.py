"""Practice calls: start one (from the desk, the API or ``warmline practice start``), run it, list them.

A practice call is a call **from the server to the agent's own phone** and nothing else: the only
endpoint ever dialled is ``PJSIP/<the agent's endpoint>`` from their SIP account, originated into
the dialplan context ``warmline-practice`` (config/asterisk/extensions.conf), which starts
MixMonitor like ``warmline-record`` (left: what the agent says, right: what the simulated caller
says) and hands the leg to Stasis as ``practice,<id>``. The handler registered for that argument
(:func:`on_practice_leg`, in the process that follows the node's events) plays the scenario
(workforce.practice.runner), hangs up, and registers the stereo recording marked ``practice``: QA
never samples it as a real call and no real report counts it (reports read the dialer's attempts
and the hotline's calls, which a practice call has none of). The agent plays it back like any of
their own calls (``GET /api/recordings/{id}/audio``); a trainer puts it up for scoring with the QA
scorecards (recordings.qa.practice).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.models import SipAccount
from agents.profiles import require_agent
from core.ari import AriClient, AriError
from core.audit import audit
from core.db import Database, utcnow
from core.features import StasisContext, StasisHandler
from core.i18n import _
from core.settings import Settings
from ivr.tts import PromptCache, media_uri
from recordings.capture import RecordingFacts, StereoCapture, recording_files
from workforce.practice.models import PracticeCall
from workforce.practice.runner import run_scenario
from workforce.practice.scenarios import Scenario, ScenarioError, scenario

log = logging.getLogger(__name__)

PRACTICE_ARG = "practice"  # the Stasis argument the practice dialplan enters with
PRACTICE_CONTEXT = "warmline-practice"
RING_TIMEOUT_S = 30
CALLER_ID = '"练习 practice" <practice>'
PLAYING_AT_MOST = timedelta(minutes=15)  # a practice call still "playing" after this is stale


class PracticeError(Exception):
    """A practice call that cannot be started: ``code`` (stable), ``status`` (HTTP), and why."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Started:
    """A practice call rung to the agent's phone."""

    id: int
    agent: str
    scenario: str
    channel_id: str
    endpoint: str
    recording_id: str


def _endpoint(session: Session, agent: str) -> str:
    try:
        user = require_agent(session, agent)
    except ValueError as exc:
        raise PracticeError("no_such_agent", str(exc), 404) from exc
    endpoint = session.scalar(select(SipAccount.endpoint).where(SipAccount.user_id == user.id))
    if endpoint is None:
        raise PracticeError("no_phone", _("agent {name} has no SIP account", name=agent), 404)
    return endpoint


def begin(
    session: Session, settings: Settings, agent: str, scenario_name: str, *, actor: str, now: datetime
) -> tuple[Started, StereoCapture]:
    """Write the practice call's row (state ``ringing``) and plan its recording; audited."""
    try:
        chosen = scenario(scenario_name)
    except ScenarioError as exc:
        raise PracticeError("no_such_scenario", str(exc)) from exc
    endpoint = _endpoint(session, agent)
    if _live_call(session, agent, now) is not None:
        raise PracticeError(
            "busy", _("{agent} already has a practice call ringing or under way", agent=agent), 409
        )
    capture = StereoCapture.plan(settings.recordings_dir, now=now)
    row = PracticeCall(
        agent=agent,
        scenario=chosen.name,
        state="ringing",
        channel_id=f"practice-{uuid.uuid4().hex}",
        recording_id=capture.rec_id,
        started_by=actor,
        started_at=now,
    )
    session.add(row)
    session.flush()
    audit(session, actor, "practice.start", agent, practice_id=row.id, scenario=chosen.name)
    started = Started(row.id, agent, chosen.name, row.channel_id, endpoint, capture.rec_id)
    return started, capture


def _live_call(session: Session, agent: str, now: datetime) -> PracticeCall | None:
    """The agent's practice call still ringing or playing, if any (one at a time)."""
    rows = session.scalars(
        select(PracticeCall).where(
            PracticeCall.agent == agent,
            PracticeCall.state.in_(("ringing", "playing")),
            PracticeCall.started_at > now - PLAYING_AT_MOST,
        )
    )
    return next((r for r in rows if view(r, now)["state"] in ("ringing", "playing")), None)


async def ring(aris: list[AriClient], started: Started, capture: StereoCapture) -> str | None:
    """Ring the agent's own phone into the practice dialplan; None when rung, else why not.
    Only ``PJSIP/<the agent's endpoint>`` is ever originated: no outside number, no trunk."""
    failure = _("no Asterisk node is configured")
    for ari in aris:
        try:
            await ari.originate(
                f"PJSIP/{started.endpoint}",
                channel_id=started.channel_id,
                context=PRACTICE_CONTEXT,
                extension="s",
                priority=1,
                variables={"WARMLINE_REC_FILE": capture.base, "WARMLINE_PRACTICE": str(started.id)},
                timeout=RING_TIMEOUT_S,
                caller_id=CALLER_ID,
            )
            return None
        except AriError as exc:
            failure = f"ari: {exc.message}"[:200]
    return failure


async def start(
    db: Database,
    settings: Settings,
    aris: list[AriClient],
    agent: str,
    scenario_name: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> Started:
    """Start a practice call for ``agent``: the row, then their phone rings. Raises PracticeError."""
    at = now or utcnow()
    started, capture = await db.in_thread(
        lambda s: begin(s, settings, agent, scenario_name, actor=actor, now=at)
    )
    failure = await ring(aris, started, capture)
    if failure is not None:
        await db.in_thread(lambda s: _finish_row(s, started.id, "failed", failure, None, utcnow()))
        await capture.discard(grace=0)
        raise PracticeError("asterisk", _("Asterisk refused: {why}", why=failure), 502)
    return started


def _finish_row(
    session: Session, practice_id: int, state: str, result: str, recording_id: str | None, at: datetime
) -> None:
    row = session.get(PracticeCall, practice_id)
    if row is not None:
        row.state, row.result, row.recording_id, row.ended_at = state, result[:200], recording_id, at


# ---------------------------------------------------------------- the call itself (Stasis)


PromptsFor = Callable[[Settings], PromptCache]


def practice_handler(prompts_for: PromptsFor = PromptCache.for_settings) -> StasisHandler:
    """The Stasis handler for ``practice,<id>``; ``prompts_for`` makes the text to speech (tests
    give silent prompts)."""

    async def handle(ctx: StasisContext, event: dict[str, Any]) -> None:
        await on_practice_leg(ctx, event, prompts_for(ctx.service.settings))

    return handle


async def on_practice_leg(ctx: StasisContext, event: dict[str, Any], prompts: PromptCache) -> None:
    """The agent answered a practice call: play the scenario, hang up, register the recording."""

    async def speak(text: str, voice: str) -> str:
        return media_uri(await prompts.speak(text, voice))

    channel = event.get("channel") or {}
    channel_id = str(channel.get("id", ""))
    args = [str(a) for a in event.get("args") or []]
    db = ctx.service.db
    events = ctx.dispatcher.subscribe(channel_id)
    try:
        practice_id = int(args[1]) if len(args) > 1 and args[1].isdigit() else -1

        def claim(session: Session) -> tuple[PracticeCall, Scenario] | None:
            row = session.get(PracticeCall, practice_id)
            if row is None or row.channel_id != channel_id or row.state != "ringing":
                return None
            row.state = "playing"
            session.flush()
            session.expunge(row)
            return row, scenario(row.scenario)

        found = await db.in_thread(claim)
        if found is None:
            log.warning("practice leg %s: no practice call %s waiting for it", channel_id, args[1:])
            with contextlib.suppress(AriError):
                await ctx.ari.hangup(channel_id)
            return
        row, chosen = found
        # Beside the recording at once: a crash mid-call is recovered as practice, never as a real call.
        await _capture(ctx.service.settings, row).begin(_facts(row))
        try:
            result = await run_scenario(ctx.ari, channel_id, chosen, events, speak)
            said = f"{result.played}/{len(chosen.steps)} lines; ended by {result.ended_by}"
        except Exception as exc:  # the recording is still kept: whatever was said is practice
            log.exception("practice call %s", row.id)
            said = f"error: {exc}"
        with contextlib.suppress(AriError):
            await ctx.ari.hangup(channel_id)
        await _recorded(ctx, row, said)
    finally:
        ctx.dispatcher.unsubscribe(channel_id)


def _capture(settings: Settings, row: PracticeCall) -> StereoCapture:
    """The recording planned when the call started (its id and day are on the row)."""
    assert row.recording_id is not None
    files = recording_files(settings.recordings_dir.resolve(), row.recording_id, row.started_at)
    return StereoCapture(row.recording_id, row.started_at, files)


def _facts(row: PracticeCall) -> RecordingFacts:
    return RecordingFacts(agent=row.agent, attempt_id=row.channel_id, practice=True)


async def _recorded(ctx: StasisContext, row: PracticeCall, said: str) -> None:
    """Merge and register the practice recording (marked practice), and close the row."""
    settings, db = ctx.service.settings, ctx.service.db
    ended = utcnow()
    try:
        rec_id = await _capture(settings, row).finish(db, settings, _facts(row), ended_at=ended)
    except Exception:
        log.exception("practice call %s: the recording could not be registered", row.id)
        rec_id = None
    await db.in_thread(lambda s: _finish_row(s, row.id, "done", said, rec_id, ended))


# ---------------------------------------------------------------- reading them


def view(row: PracticeCall, now: datetime) -> dict[str, Any]:
    """One practice call for people and the API. A call still ``ringing`` long after its ring
    timeout was not answered (the phone never took it into the practice dialplan)."""
    state = row.state
    if state == "ringing" and row.started_at + timedelta(seconds=RING_TIMEOUT_S + 30) < now:
        state = "not_answered"
    try:
        title = scenario(row.scenario).shown_title()
    except ScenarioError:
        title = row.scenario
    recorded = row.state == "done" and row.recording_id is not None
    return {
        "id": row.id,
        "agent": row.agent,
        "scenario": row.scenario,
        "title": title,
        "state": state,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "started_by": row.started_by,
        "result": row.result,
        "recording_id": row.recording_id if recorded else None,
        "audio_url": f"/api/recordings/{row.recording_id}/audio" if recorded else None,
    }


def practice_calls(
    session: Session, now: datetime, agent: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest practice calls (one agent's, or everyone's), newest first."""
    q = select(PracticeCall).order_by(PracticeCall.started_at.desc(), PracticeCall.id.desc()).limit(limit)
    if agent is not None:
        q = q.where(PracticeCall.agent == agent)
    return [view(row, now) for row in session.scalars(q)]


def get_call(session: Session, practice_id: int) -> PracticeCall:
    row = session.get(PracticeCall, practice_id)
    if row is None:
        raise PracticeError("no_such_practice", _("no practice call {id}", id=practice_id), 404)
    return row


def scenario_list() -> list[dict[str, Any]]:
    from workforce.practice.scenarios import scenarios

    return [
        {
            "name": s.name,
            "title": s.shown_title(),
            "title_zh": s.title,
            "title_en": s.title_en,
            "description": s.description,
            "steps": len(s.steps),
        }
        for s in scenarios().values()
    ]
