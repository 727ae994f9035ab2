"""Agents' profiles over HTTP.

    GET   /api/agents                  every agent's profile            supervisor, admin
    GET   /api/agents/me/profile       my own profile                   agent
    GET   /api/agents/{name}/profile   one agent's profile              supervisor, admin; the agent
    PUT   /api/agents/{name}/profile   replace it (every field given)   supervisor, admin
    PATCH /api/agents/{name}/profile   change the fields given          supervisor, admin

A body has ``skills``, ``lines``, ``languages`` (lists of strings), ``daily_hours`` (a number,
more than 0, at most 24), ``manual_dial`` (true or false; PUT: false when left out) and ``level``
(``trainee``, ``supervised`` or ``agent``; left out: as it is); unknown fields are refused. A
profile that cannot be set is answered 422 in FastAPI's own shape (``detail[0].loc`` names the
field, ``detail[0].msg`` says why); an unknown agent, or a user who is not an agent, 404 with
``detail.code`` (``no_such_user``, ``not_an_agent``) and ``detail.message`` in the requester's
language. Each change is audited (agents.profiles).
"""

from __future__ import annotations

from typing import Annotated, Literal, NoReturn

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from agents import profiles
from agents.profiles import Profile, ProfileError
from core.auth.models import Role, User
from core.deps import Roles, SessionDep
from core.errors import http_error
from core.i18n import _

router = APIRouter(prefix="/api/agents", tags=["agents"])
SupervisorUser = Annotated[User, Depends(Roles(Role.supervisor))]
AgentOrSupervisor = Annotated[User, Depends(Roles(Role.agent, Role.supervisor))]
AgentUser = Annotated[User, Depends(Roles(Role.agent))]

# Checked by agents.profiles (more than 0, at most 24), so the API says it as the CLI does.
Hours = Annotated[float, Field(description="daily target in hours: more than 0, at most 24")]
Names = Annotated[list[str], Field(max_length=profiles.MAX_ITEMS)]
Level = Annotated[
    Literal["trainee", "supervised", "agent"],
    Field(description="trainee < supervised < agent: campaigns and lines may ask for at least one"),
]


class ProfileIn(BaseModel):
    """A whole profile (PUT)."""

    model_config = ConfigDict(extra="forbid")
    skills: Names
    lines: Names
    languages: Names
    daily_hours: Hours
    manual_dial: bool = Field(default=False, description="may dial typed numbers (where a campaign allows)")
    level: Level | None = None  # left out: as it is (a PUT never promotes or demotes by omission)


class ProfilePatch(BaseModel):
    """Some fields of a profile (PATCH); the ones left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    skills: Names | None = None
    lines: Names | None = None
    languages: Names | None = None
    daily_hours: Hours | None = None
    manual_dial: bool | None = None
    level: Level | None = None


class ProfileChanged(Profile):
    changed: list[str] = Field(default_factory=list, description="the fields this request changed")


def _refuse(exc: ProfileError) -> NoReturn:
    if exc.field is None:
        raise http_error(status.HTTP_404_NOT_FOUND, exc.code, exc.problem) from exc
    detail = [{"loc": ["body", exc.field], "msg": exc.problem, "type": "value_error"}]
    raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from exc


@router.get("")
def list_agents(_: SupervisorUser, session: SessionDep) -> list[Profile]:
    """Every agent (disabled ones too, marked) with skills, lines, languages and daily target."""
    return profiles.list_profiles(session)


@router.get("/me/profile")
def my_profile(user: AgentUser, session: SessionDep) -> Profile:
    try:
        return profiles.get_profile(session, user.name)
    except ProfileError as exc:
        _refuse(exc)


@router.get("/{name}/profile")
def agent_profile(name: str, user: AgentOrSupervisor, session: SessionDep) -> Profile:
    """an agent may read only their own profile"""
    if user.role is Role.agent and user.name != name:
        raise http_error(
            status.HTTP_403_FORBIDDEN, "forbidden", _("an agent may read only their own profile")
        )
    try:
        return profiles.get_profile(session, name)
    except ProfileError as exc:
        _refuse(exc)


def _update(session: SessionDep, name: str, user: User, body: ProfileIn | ProfilePatch) -> ProfileChanged:
    try:
        profile, changed = profiles.update_profile(
            session,
            name,
            actor=user.name,
            skills=body.skills,
            lines=body.lines,
            languages=body.languages,
            daily_hours=body.daily_hours,
            manual_dial=body.manual_dial,
            level=body.level,
        )
    except ProfileError as exc:
        _refuse(exc)
    return ProfileChanged(**profile.model_dump(), changed=changed)


@router.put("/{name}/profile")
def replace_profile(name: str, body: ProfileIn, user: SupervisorUser, session: SessionDep) -> ProfileChanged:
    return _update(session, name, user, body)


@router.patch("/{name}/profile")
def change_profile(
    name: str, body: ProfilePatch, user: SupervisorUser, session: SessionDep
) -> ProfileChanged:
    return _update(session, name, user, body)
