"""What an agent's softphone asks the server for: its SIP credentials and settings."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from agents.models import SipAccount
from agents.service import SIP_REALM
from agents.states import HoursReport, hours_report, record_state
from core.audit import audit
from core.auth.models import Role, User
from core.bus import Bus
from core.db import utcnow
from core.deps import DatabaseDep, Roles, SessionDep, SettingsDep
from core.messages import AgentState, AgentStateName
from core.settings import Settings

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]


class SipProvisioning(BaseModel):
    endpoint: str
    username: str
    password: str
    realm: str
    registrar: str
    transport: str = "udp"
    codecs: list[str] = ["G722", "PCMU", "PCMA"]
    dtmf: str = "rfc4733"


@router.get("/me/sip")
def my_sip(user: AgentUser, session: SessionDep, settings: SettingsDep, request: Request) -> SipProvisioning:
    """The softphone fetches this after sign-in, so no SIP password is ever typed or stored."""
    account = session.scalar(select(SipAccount).where(SipAccount.user_id == user.id))
    if account is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"user {user.name} has no SIP account")
    audit(
        session,
        user.name,
        "sip_account.fetch",
        account.endpoint,
        ip=request.client.host if request.client else None,
    )
    return SipProvisioning(
        endpoint=account.endpoint,
        username=account.endpoint,
        password=account.secret,
        realm=SIP_REALM,
        registrar=f"sip:{settings.sip_host}:{settings.sip_port}",
    )


class StateChange(BaseModel):
    state: AgentStateName
    reason: str | None = Field(default=None, max_length=64)


@router.get("/me/hours")
def my_hours(user: AgentUser, session: SessionDep, settings: SettingsDep) -> HoursReport:
    """Today's and this week's hours, and a sentence a screen reader can say."""
    return hours_report(session, user.name, utcnow(), ZoneInfo(settings.timezone))


@router.get("/{name}/hours")
def agent_hours(name: str, _: SupervisorUser, session: SessionDep, settings: SettingsDep) -> HoursReport:
    return hours_report(session, name, utcnow(), ZoneInfo(settings.timezone))


@router.post("/me/state")
async def set_my_state(body: StateChange, user: AgentUser, request: Request, db: DatabaseDep) -> HoursReport:
    """For clients that cannot reach the bus: the server records and publishes the state for them."""
    message = AgentState(agent=user.name, state=body.state, reason=body.reason, since=utcnow())
    with db.session() as session:
        record_state(session, message)
    bus: Bus | None = getattr(request.app.state, "bus", None)
    if bus is not None:
        await bus.publish(message)
    settings: Settings = request.app.state.settings
    with db.session() as session:
        return hours_report(session, user.name, utcnow(), ZoneInfo(settings.timezone))
