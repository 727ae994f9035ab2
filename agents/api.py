"""What an agent's softphone asks the server for: its SIP credentials and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import select

from agents.models import SipAccount
from agents.service import SIP_REALM
from core.audit import audit
from core.auth.models import Role, User
from core.deps import Roles, SessionDep, SettingsDep

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]


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
    audit(session, user.name, "sip_account.fetch", account.endpoint,
          ip=request.client.host if request.client else None)
    return SipProvisioning(
        endpoint=account.endpoint,
        username=account.endpoint,
        password=account.secret,
        realm=SIP_REALM,
        registrar=f"sip:{settings.sip_host}:{settings.sip_port}",
    )
