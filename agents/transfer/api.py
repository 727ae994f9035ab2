"""Transfers over HTTP, for the agent's softphone (role agent; answers in the client's language).

    GET  /api/agents/me/transfer-targets        colleagues (available first) and skill queues
    POST /api/agents/me/transfers               {"call_ref", "kind", "target", "mode"}: start one
    GET  /api/agents/me/transfers/{id}          where it is: state, result, to_agent, message
    POST /api/agents/me/transfers/{id}/complete join the caller and the consulted target
    POST /api/agents/me/transfers/{id}/cancel   go back to the caller

``kind`` is ``agent`` (``target``: the colleague's name), ``queue`` (a skill) or ``number`` (an
outside number, or a name from the campaign's ``transfer_numbers``); ``mode`` is ``attended``
(consult first, the default) or ``blind``. The request is stored (and audited) at once and
answered 202; the process that holds the call carries it out within a moment, and the transfer's
``state`` goes ``requested`` → ``ringing`` → ``consulting`` → ``completed`` | ``cancelled`` |
``failed`` (with ``result``: ``busy``, ``no_answer``, ``refused``, ``caller_hangup``, ``dnc``…).
Once stored, a ``transfer`` CallEvent announces it on the bus (``calls/<call_ref>``); the row is
the record. Refusals: 404 (no such colleague, queue or transfer), 409 (the colleague is not available, a
transfer already under way, nothing to complete), 422 (bad input, with ``field``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from agents.transfer import service
from agents.transfer.service import TransferAsk, TransferRefused
from core.auth.models import Role, User
from core.bus import Bus
from core.db import Database, utcnow
from core.deps import DatabaseDep, Roles, SettingsDep
from core.errors import http_error
from core.messages import CallEvent

router = APIRouter(prefix="/api/agents", tags=["agents"])
AgentUser = Annotated[User, Depends(Roles(Role.agent))]
T = TypeVar("T")


def clock() -> Callable[[], datetime]:
    """What time it is for a transfer (tests override this dependency)."""
    return utcnow


ClockDep = Annotated[Callable[[], datetime], Depends(clock)]


class TransferIn(BaseModel):
    call_ref: str = Field(min_length=1, max_length=128, description="the call (X-Warmline-Attempt)")
    kind: Literal["agent", "queue", "number"]
    target: str = Field(min_length=1, max_length=64, description="colleague, skill, or number")
    mode: Literal["blind", "attended"] = "attended"


async def _in_session(db: Database, work: Callable[[Session], T]) -> T:
    try:
        return await db.in_thread(work)
    except TransferRefused as exc:
        raise http_error(exc.status, exc.code, exc.message, **exc.extra) from exc


@router.get("/me/transfer-targets")
async def transfer_targets(
    user: AgentUser, db: DatabaseDep, settings: SettingsDep, now: ClockDep
) -> dict[str, Any]:
    """Whom I may hand a call to now: colleagues with their state, and the skill queues."""
    return await _in_session(db, lambda s: service.targets(s, user.name, now(), settings.timezone))


async def _publish(request: Request, answer: dict[str, Any], step: str) -> bool:
    """A `transfer` CallEvent once the request is stored (the row is the record; a bus that is
    down loses nothing). The target is masked when it is a number."""
    bus: Bus | None = getattr(request.app.state, "bus", None)
    if bus is None:
        return False
    detail = {k: answer[k] for k in ("id", "from_agent", "kind", "mode", "target", "state")}
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            return await bus.publish(CallEvent(call_id=answer["call_ref"], kind="transfer",
                                               detail={**detail, "step": step}))  # fmt: skip
    return False


@router.post("/me/transfers", status_code=status.HTTP_202_ACCEPTED)
async def start_transfer(
    body: TransferIn, user: AgentUser, request: Request, db: DatabaseDep, settings: SettingsDep, now: ClockDep
) -> dict[str, Any]:
    """Ask for a transfer of my call; the answer says where it is (poll it by its id)."""
    ask = TransferAsk(user.name, body.call_ref, body.kind, body.target, body.mode)
    answer = await _in_session(
        db, lambda s: service.public(service.request_transfer(s, ask, now(), tz=settings.timezone))
    )
    answer["published"] = await _publish(request, answer, "start")
    return answer


@router.get("/me/transfers/{transfer_id}")
async def get_transfer(transfer_id: str, user: AgentUser, db: DatabaseDep) -> dict[str, Any]:
    return await _in_session(db, lambda s: service.public(service.get_transfer(s, user.name, transfer_id)))


@router.post("/me/transfers/{transfer_id}/complete", status_code=status.HTTP_202_ACCEPTED)
async def complete_transfer(
    transfer_id: str, user: AgentUser, request: Request, db: DatabaseDep, now: ClockDep
) -> dict[str, Any]:
    """Join: the caller goes to the consulted target and I leave the call."""
    return await _step(transfer_id, "complete", user, request, db, now)


@router.post("/me/transfers/{transfer_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_transfer(
    transfer_id: str, user: AgentUser, request: Request, db: DatabaseDep, now: ClockDep
) -> dict[str, Any]:
    """Go back: the target's leg ends and I am with the caller again."""
    return await _step(transfer_id, "cancel", user, request, db, now)


async def _step(
    transfer_id: str, step: str, user: User, request: Request, db: Database, now: Callable[[], datetime]
) -> dict[str, Any]:
    answer = await _in_session(
        db, lambda s: service.public(service.request_step(s, user.name, transfer_id, step, now()))
    )
    answer["published"] = await _publish(request, answer, step)
    return answer
