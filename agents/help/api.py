"""Help in a hard call over HTTP (answers in the asker's language; every action stored and audited).

    POST /api/agents/me/help                      {"call_ref"}: the help key -- supervisors alerted
    POST /api/agents/me/calls/{call_ref}/abusive  end an abusive call with a courteous closing
                                                  prompt; the agent's cool-down starts
    GET  /api/agents/me/cooldown                  my cool-down now, if any: seconds left, reason,
                                                  and what to say
    GET  /api/supervisor/help                     open help requests and running cool-downs
    POST /api/supervisor/calls/{call_ref}/listen|whisper|join  {"endpoint"?, "agent"?}

The help request is stored in ``help_requests`` and announced on the bus as a ``help`` CallEvent
(``calls/<call_ref>``), which the wallboard shows in a live region. A supervisor's action is stored
in ``supervisor_actions`` before Asterisk is asked (ARI snoop and bridges: agents.help.coach); their
phone rings on ``endpoint`` (default: their own SIP account). Refusals: 404 (no such call or agent
on Asterisk), 409 (the agent is on no call), 422 (bad input, with ``field``), 502 (Asterisk said no).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from agents.help import coach, service
from agents.help.models import HelpRequest, SupervisorAction
from agents.models import SipAccount
from core.ari import AriClient, AriError
from core.auth.models import Role, User
from core.bus import Bus
from core.db import utcnow
from core.deps import DatabaseDep, Roles, SettingsDep
from core.errors import http_error
from core.formats import time_of_day
from core.i18n import N_, _
from core.messages import CallEvent

log = logging.getLogger(__name__)

agent_router = APIRouter(prefix="/api/agents", tags=["agents"])
supervisor_router = APIRouter(prefix="/api/supervisor", tags=["supervisor"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
ENDPOINT = re.compile(r"^(PJSIP|SIP|Local)/[A-Za-z0-9_.@+-]{1,90}$")
PLAYBACK_WAIT_S = 15.0
RINGING = {
    "listen": N_("Your phone is ringing: answer to listen to the call."),
    "whisper": N_("Your phone is ringing: answer to speak to the agent only."),
    "join": N_("Your phone is ringing: answer to join the call."),
}  # the longest the closing prompt is waited for before the call ends


def clock() -> Callable[[], datetime]:
    """What time it is for help and cool-downs (tests override this dependency)."""
    return utcnow


async def ari_clients(settings: SettingsDep) -> AsyncIterator[list[AriClient]]:
    """One ARI client per Asterisk node (tests override this with the fake Asterisk's)."""
    clients = [
        AriClient(node.ari_url, node.ari_user, settings.node_ari_password(node), node.app)
        for node in settings.asterisk_nodes
    ]
    try:
        yield clients
    finally:
        for ari in clients:
            with contextlib.suppress(Exception):
                await ari.aclose()


ClockDep = Annotated[Callable[[], datetime], Depends(clock)]
AriDep = Annotated[list[AriClient], Depends(ari_clients)]


class HelpIn(BaseModel):
    call_ref: str = Field(min_length=1, max_length=128, description="the call (X-Warmline-Attempt)")


class CoachIn(BaseModel):
    endpoint: str | None = Field(default=None, max_length=100, description="PJSIP/<endpoint> to ring")
    agent: str | None = Field(default=None, max_length=64, description="the agent on the call")


async def _publish(request: Request, message: CallEvent) -> None:
    bus: Bus | None = getattr(request.app.state, "bus", None)
    if bus is not None:
        try:
            await bus.publish(message)
        except Exception:  # the row is the record; the alert waits for the wallboard's next poll
            log.exception("publishing %s", message.kind)


def _endpoint_of(session: Any, user_name: str) -> str | None:
    endpoint: str | None = session.scalar(
        select(SipAccount.endpoint).join(User, User.id == SipAccount.user_id).where(User.name == user_name)
    )
    return endpoint


@agent_router.post("/me/help", status_code=status.HTTP_201_CREATED)
async def ask_for_help(
    body: HelpIn, user: AgentUser, request: Request, db: DatabaseDep, now: ClockDep
) -> dict[str, Any]:
    """The help key: stored, and every supervisor's wallboard says so at once."""
    at = now()

    def keep(session: Any) -> dict[str, Any]:
        row = service.request_help(session, user.name, body.call_ref, at)
        return {"id": row.id, "call_ref": row.call_ref, "state": row.state, "at": row.at}

    answer: dict[str, Any] = await db.in_thread(keep)
    alert = _(service.HELP_ALERT, agent=user.display_name or user.name)
    await _publish(
        request,
        CallEvent(
            call_id=body.call_ref,
            kind="help",
            detail={"agent": user.name, "help_id": answer["id"], "message": alert},
        ),
    )
    answer["message"] = _("Help asked for: a supervisor has been alerted.")
    return answer


async def _closing_media(request: Request) -> str | None:
    """The courteous closing prompt as Asterisk plays it (the IVR's text to speech, in Chinese)."""
    speak: Callable[[str], Awaitable[str]] | None = getattr(request.app.state, "speak", None)
    if speak is None:
        return None
    try:
        return await speak(service.closing_prompt())
    except Exception:  # no voice: the call still ends, without the prompt
        log.exception("closing prompt")
        return None


@agent_router.post("/me/calls/{call_ref}/abusive")
async def end_abusive_call(
    call_ref: str,
    user: AgentUser,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    now: ClockDep,
    aris: AriDep,
) -> dict[str, Any]:
    """Flag the call as abusive, end it with the closing prompt, and start my cool-down."""
    if not call_ref or len(call_ref) > 128:
        raise http_error(422, "invalid", _("call_ref: 1 to 128 characters"), field="call_ref")
    at = now()
    minutes = settings.help_cooldown_minutes

    def keep(session: Any) -> tuple[service.Cooldown, str | None]:
        return service.flag_abusive(session, user.name, call_ref, at, minutes), _endpoint_of(
            session, user.name
        )

    cooldown, endpoint = await db.in_thread(keep)
    ended = False
    if endpoint is not None and aris:
        media = await _closing_media(request)
        for ari in aris:
            try:
                ended = await coach.end_courteously(ari, endpoint, media, wait_s=PLAYBACK_WAIT_S)
            except AriError as exc:
                log.warning("abusive call %s: %s", call_ref, exc)
            if ended:
                break
    until = time_of_day(cooldown.until, settings.timezone)
    await _publish(
        request,
        CallEvent(
            call_id=call_ref,
            kind="check_in",
            detail={
                "agent": user.name,
                "until": cooldown.until.isoformat(),
                "message": _(service.CHECK_IN, agent=user.display_name or user.name),
            },
        ),
    )
    return {
        "call_ref": call_ref,
        "ended": ended,
        "cooldown_until": cooldown.until,
        "minutes": cooldown.minutes,
        "message": service.cooldown_message(cooldown.minutes, until),
    }


@agent_router.get("/me/cooldown")
async def my_cooldown(
    user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep
) -> dict[str, Any]:
    """My cool-down now: ``remaining_s`` (seconds left), ``reason`` (abusive, escalated, long_call),
    ``cooldown_until``, ``minutes`` and the sentence to say; all null (remaining 0) when none runs."""
    at = now()
    rest = next(
        (c for c in await db.in_thread(lambda s: service.resting(s, at)) if c.agent == user.name), None
    )
    if rest is None:
        return {"cooldown_until": None, "remaining_s": 0, "reason": None, "minutes": None, "message": None}
    remaining = max(1, round((rest.until - at).total_seconds()))
    minutes = max(1, round(remaining / 60))
    return {
        "cooldown_until": rest.until,
        "remaining_s": remaining,
        "reason": rest.reason,
        "minutes": minutes,
        "message": service.cooldown_message(minutes, time_of_day(rest.until, settings.timezone)),
    }


@supervisor_router.get("/help")
async def help_board(_: SupervisorUser, db: DatabaseDep, now: ClockDep) -> dict[str, Any]:
    """What the wallboard's help panel shows: open requests (oldest first) and who is resting."""
    at = now()

    def read(session: Any) -> dict[str, Any]:
        return {
            "requests": [
                {"id": r.id, "agent": r.agent, "call_ref": r.call_ref, "kind": r.kind, "at": r.at}
                for r in service.open_requests(session)
            ],
            "cooldowns": [
                {
                    "agent": c.agent,
                    "until": c.until,
                    "reason": c.reason,
                    "call_ref": c.call_ref,
                    "message": service.check_in_message(c.reason, c.agent),
                }
                for c in service.resting(session, at)
            ],
        }

    result: dict[str, Any] = await db.in_thread(read)
    return result


@supervisor_router.post("/calls/{call_ref}/{action}", status_code=status.HTTP_202_ACCEPTED)
async def supervise(
    call_ref: str,
    action: Literal["listen", "whisper", "join"],
    body: CoachIn,
    user: SupervisorUser,
    db: DatabaseDep,
    now: ClockDep,
    aris: AriDep,
) -> dict[str, Any]:
    """Ring the supervisor's phone onto the agent's call: listening, whispering to the agent only, or joining."""
    if body.endpoint is not None and not ENDPOINT.match(body.endpoint):
        raise http_error(
            422,
            "invalid",
            _("endpoint: like PJSIP/name, not {value!r}", value=body.endpoint),
            field="endpoint",
        )
    at = now()

    def keep(session: Any) -> tuple[int, str, str]:
        agent = body.agent or service.agent_of_call(session, call_ref)
        if agent is None:
            raise http_error(
                404,
                "no_such_call",
                _("nobody asked for help on call {call}; name the agent", call=call_ref),
                field="agent",
            )
        agent_endpoint = _endpoint_of(session, agent)
        if agent_endpoint is None:
            raise http_error(
                404, "no_such_agent", _("agent {name} has no SIP account", name=agent), field="agent"
            )
        own = _endpoint_of(session, user.name)
        endpoint = body.endpoint or (f"PJSIP/{own}" if own else None)
        if endpoint is None:
            raise http_error(
                422,
                "invalid",
                _("endpoint: you have no SIP account; name the phone to ring"),
                field="endpoint",
            )
        row = service.record_action(session, user.name, call_ref, action, endpoint, at, agent=agent)
        return row.id, agent_endpoint, endpoint

    action_id, agent_endpoint, endpoint = await db.in_thread(keep)
    result: coach.Coaching | None = None
    failure = "no_call"
    for ari in aris:
        try:
            result = await coach.coach(
                ari, action, agent_endpoint=agent_endpoint, supervisor_endpoint=endpoint, action_id=action_id
            )
            break
        except coach.CoachError as exc:
            failure = exc.code
        except AriError as exc:
            failure = f"ari: {exc.message}"[:200]

    def finish(session: Any) -> None:
        row = session.get(SupervisorAction, action_id)
        if result is None:
            row.state, row.result = "failed", failure
        else:
            row.state, row.snoop_channel, row.bridge_id = "ringing", result.snoop_channel, result.bridge_id

    await db.in_thread(finish)
    if result is None:
        if failure in ("no_call", "not_bridged"):
            raise http_error(409, failure, _("the agent is on no call now"))
        raise http_error(502, "asterisk", _("Asterisk refused: {why}", why=failure))
    return {
        "id": action_id,
        "call_ref": call_ref,
        "action": action,
        "endpoint": endpoint,
        "state": "ringing",
        "bridge_id": result.bridge_id,
        "snoop_channel": result.snoop_channel,
        "message": _(RINGING[action]),
    }


__all__ = ["HelpRequest", "agent_router", "supervisor_router"]
