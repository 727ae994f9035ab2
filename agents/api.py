"""What an agent's softphone asks the server for: its SIP credentials and settings.

The wrap-up of a call (`POST /api/agents/me/wrapup`) is the dialer's: `dialer.wrapup_api`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from agents.models import SipAccount
from agents.quality import latest_per_agent, record_quality
from agents.screen_pops import PROCESS_POPS, HeldPop, ScreenPopBox
from agents.service import SIP_REALM
from agents.states import HoursReport, hours_report, record_state
from agents.wallboard import Wallboard, wallboard
from core.audit import audit
from core.auth.models import Role, User
from core.bus import Bus
from core.call_tickets import mint, ticket_secret
from core.db import utcnow
from core.deps import DatabaseDep, Roles, SessionDep, SettingsDep
from core.errors import http_error
from core.i18n import _
from core.messages import AgentState, AgentStateName, CallQuality
from core.settings import Settings

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]


class SipProvisioning(BaseModel):
    """What a softphone needs to register: over TLS, verifying the server with `ca_pem` (None: a
    public CA, the system's trust store), with SRTP (SDES) required for media."""

    endpoint: str
    username: str
    password: str
    realm: str
    registrar: str
    transport: str = "tls"
    media_encryption: str = "sdes"
    srtp: str = "mandatory"
    ca_pem: str | None = None
    codecs: list[str] = ["G722", "PCMU", "PCMA"]
    dtmf: str = "rfc4733"


def _ca_pem(settings: Settings) -> str | None:
    """The CA softphones verify the SIP server with: the configured one, else the lab's own."""
    path = settings.sip_ca_file or settings.lab_dir / "tls" / "ca.pem"
    try:
        return path.read_text()
    except OSError:
        return None


@router.get("/me/sip")
def my_sip(user: AgentUser, session: SessionDep, settings: SettingsDep, request: Request) -> SipProvisioning:
    """The softphone fetches this after sign-in, so no SIP password is ever typed or stored."""
    account = session.scalar(select(SipAccount).where(SipAccount.user_id == user.id))
    if account is None:
        raise http_error(
            status.HTTP_404_NOT_FOUND, "no_sip_account", _("user {name} has no SIP account", name=user.name)
        )
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
        registrar=f"sips:{settings.sip_host}:{settings.sips_port}",
        ca_pem=_ca_pem(settings),
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
    settings: Settings = request.app.state.settings

    def keep() -> HoursReport:
        with db.session() as session:
            record_state(session, message)
        with db.session() as session:
            return hours_report(session, user.name, utcnow(), ZoneInfo(settings.timezone))

    report = await asyncio.to_thread(keep)
    bus: Bus | None = getattr(request.app.state, "bus", None)
    if bus is not None:
        await bus.publish(message)
    return report


# ---------------------------------------------------------------- softphone reports


class QualityIn(BaseModel):
    call_ref: str = Field(min_length=1, max_length=128)
    codec: str = Field(default="", max_length=32)
    jitter_ms: float = Field(ge=0)
    loss_pct: float = Field(ge=0, le=100)
    rtt_ms: float = Field(ge=0)
    mos: float = Field(ge=1, le=5)
    final: bool = False


@router.post("/me/quality", status_code=204)
def report_quality(body: QualityIn, user: AgentUser, session: SessionDep) -> None:
    """A softphone's call-quality figures (jitter, loss, MOS estimate), kept for supervisors.

    The HTTP path for softphones that cannot reach the bus; what comes over the bus is recorded
    by the service's bus worker, so nothing is republished here (it would be stored twice)."""
    record_quality(session, CallQuality(agent=user.name, **body.model_dump()))


@router.get("/quality")
def agents_quality(_: SupervisorUser, session: SessionDep) -> list[CallQuality]:
    """The latest call quality per agent (worst MOS first), so a bad home line stands out."""
    return latest_per_agent(session)


@router.get("/wallboard")
def agents_wallboard(_: SupervisorUser, session: SessionDep, settings: SettingsDep) -> Wallboard:
    """Every active agent's state, time in state, talk time today and latest line quality."""
    return wallboard(session, utcnow(), ZoneInfo(settings.timezone))


# ---------------------------------------------------------------- screen pops of nailed calls

POLL_SECONDS = 25.0  # the longest a softphone's poll is held (under common proxies' 30-60 s)


def screen_pop_box() -> ScreenPopBox:
    """The process's box (agents.screen_pops); tests give their own."""
    return PROCESS_POPS


class ScreenPopOut(BaseModel):
    """A nailed call's screen pop (``screen_pop``) or its end (``screen_pop_end``): the same
    ``X-Warmline-*`` fields a rung call's INVITE carries (names without the prefix, values
    percent-encoded), the ticket among them, minted for the agent who asks."""

    seq: int
    kind: str
    attempt: str
    campaign: str | None
    fields: dict[str, str]


class ScreenPopsOut(BaseModel):
    pops: list[ScreenPopOut]
    last: int  # ask `after` this next time


def _pop_out(pop: HeldPop, agent: str, settings: Settings) -> ScreenPopOut:
    fields = dict(pop.fields)
    if pop.kind == "screen_pop":
        # The same ticket rules as the rung hand-over's header: this call, this agent, its campaign
        # or line. Minted here, for the agent signed in: a ticket never travels on the bus.
        line = fields.get("Line")
        fields["Ticket"] = mint(
            ticket_secret(settings.var_dir),
            call_ref=pop.attempt,
            agent=agent,
            now=utcnow(),
            campaign=pop.campaign,
            line=unquote(line) if line else None,
        )
    return ScreenPopOut(seq=pop.seq, kind=pop.kind, attempt=pop.attempt, campaign=pop.campaign, fields=fields)


@router.get("/me/screen-pops")
async def my_screen_pops(
    request: Request,
    user: AgentUser,
    session: SessionDep,
    settings: SettingsDep,
    box: Annotated[ScreenPopBox, Depends(screen_pop_box)],
    after: Annotated[int | None, Query(ge=0)] = None,
    wait: Annotated[float, Query(ge=0, le=POLL_SECONDS)] = POLL_SECONDS,
) -> ScreenPopsOut:
    """The screen pops of the agent's nailed calls after ``after`` (a long poll: held up to
    ``wait`` seconds until one comes). Without ``after``: the pops of calls still going, at once,
    and ``last`` to ask after from then on."""
    session.commit()  # signed in: the poll holds no database connection while it waits
    pops = await _unless_gone(request, box.wait(user.name, after, wait))
    return ScreenPopsOut(pops=[_pop_out(p, user.name, settings) for p in pops or []], last=box.last)


async def _unless_gone(request: Request, poll: Awaitable[list[HeldPop]]) -> list[HeldPop] | None:
    """The poll's pops, or None as soon as the phone has hung up: a phone that quits (or loses
    its network) no longer leaves its poll waiting here for the rest of its 25 s."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    waiting, watching = asyncio.ensure_future(poll), asyncio.ensure_future(gone())
    try:
        await asyncio.wait((waiting, watching), return_when=asyncio.FIRST_COMPLETED)
        return waiting.result() if waiting.done() else None
    finally:
        for task in (waiting, watching):
            task.cancel()
        await asyncio.gather(waiting, watching, return_exceptions=True)
