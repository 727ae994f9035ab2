"""Agents' profiles: what routing and the work-hour ledger know about an agent beyond the account,
administered by supervisors and administrators (``warmline agents``, ``/api/agents/{name}/profile``
and the console's Agents page all come here).

- **skills**: the calls the agent takes (an IVR transfer node's ``skill``). ``any`` is no skill:
  it is what a flow names when anyone will do.
- **lines**: the inbound lines the agent serves, by the number's ``name`` in the inbound
  configuration (``community-hotline``) or by its number (``12345``). No lines: every line.
  Outbound calls do not look at lines.
- **languages**: language tags (``zh-CN``, ``yue``, ``en``). A call that asks for a language is
  offered only to agents who list it (asking for ``zh`` also finds ``zh-CN``).
- **daily target**: the hours the agent means to work a day; the ledger (agents.states) says how
  far they are.
- **manual dial**: a permission: the agent may dial a typed number, in a campaign that allows it
  (``manual_dial: true``). Off unless a supervisor gives it.
- **level**: ``trainee`` → ``supervised`` → ``agent`` (agents.routing.LEVELS). A campaign or an
  inbound line may ask for at least a level (``min_level``); routing never offers its calls to an
  agent below it. Anyone may take practice calls (workforce.practice). ``agent`` until set.

Only users with the agent role have a profile. Every change is audited (``agent_profile.update``,
with each changed field's value before and after) in the transaction that makes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.models import AgentProfile, SipAccount
from agents.routing import ANY_SKILL, FULL_LEVEL, LEVELS
from core.audit import audit
from core.auth.models import ROLE_NAMES, Role, User
from core.formats import duration
from core.i18n import N_, _

DEFAULT_DAILY_MINUTES = 240
MAX_DAILY_HOURS = 24.0
MAX_ITEMS = 32
SEPARATORS = re.compile(r"[,，、;；]")  # a list typed with ASCII or Chinese commas
_NAME = re.compile(r"^[^\s,，、;；]{1,64}$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
FIELDS = ("skills", "lines", "languages", "daily_target_minutes", "manual_dial", "level")
LEVEL_NAMES = {"trainee": N_("trainee"), "supervised": N_("supervised"), "agent": N_("agent")}


class ProfileError(ValueError):
    """A request about a profile that cannot be done; ``field`` says which part (None: the agent),
    ``problem`` says why in the current locale, ``code`` for programs."""

    code = "invalid_profile"

    def __init__(self, field: str | None, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class AgentNotFound(ProfileError):
    code = "no_such_user"

    def __init__(self, name: str) -> None:
        super().__init__(None, _("no user named '{name}'", name=name))


class NotAnAgent(ProfileError):
    code = "not_an_agent"

    def __init__(self, name: str, role: Role) -> None:
        super().__init__(
            None,
            _(
                "'{name}' is a {role}, not an agent: only agents have a profile",
                name=name,
                role=_(ROLE_NAMES[role]),
            ),
        )


class Profile(BaseModel):
    """One agent's profile as the CLI, the API and the console show it."""

    name: str
    display_name: str | None = None
    disabled: bool = False
    endpoint: str | None = None
    skills: list[str] = []
    lines: list[str] = []
    languages: list[str] = []
    daily_target_minutes: int = DEFAULT_DAILY_MINUTES
    daily_hours: float = DEFAULT_DAILY_MINUTES / 60
    manual_dial: bool = False
    level: str = FULL_LEVEL  # trainee, supervised or agent

    def text(self) -> str:
        """One line a person reads (and a screen reader says) about the profile."""
        who = f"{self.name} ({self.display_name})" if self.display_name else self.name
        if self.disabled:
            who = _("{who}, disabled", who=who)
        return (
            _(
                "{who}: skills {skills}; lines {lines}; languages {languages}; {hours} a day",
                who=who,
                skills=_(", ").join(self.skills) or _("none"),
                lines=_(", ").join(self.lines) or _("all"),
                languages=_(", ").join(self.languages) or _("none"),
                hours=hours_text(self.daily_target_minutes),
            )
            + self.level_said()
            + (_("; may dial typed numbers") if self.manual_dial else "")
        )

    def level_said(self) -> str:
        """'; level: trainee' for an agent below full level ('' for a full agent: the usual case)."""
        return "" if self.level == FULL_LEVEL else _("; level: {level}", level=level_text(self.level))


def level_text(level: str) -> str:
    """'见习' / 'trainee' (the level's name in the current locale)."""
    return _(LEVEL_NAMES[level]) if level in LEVEL_NAMES else level


def hours_text(minutes: int) -> str:
    """'3小时30分' / '3 h 30 min' (core.formats.duration)."""
    return duration(minutes * 60)


# ---------------------------------------------------------------- reading what people type


def split_list(text: str) -> list[str]:
    """``"a, b，c"`` → ``["a", "b", "c"]``; an empty text is an empty list (it clears the field)."""
    return [part.strip() for part in SEPARATORS.split(text) if part.strip()]


def _names(field: str, values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        value = str(raw).strip()
        if not _NAME.match(value):
            raise ProfileError(
                field, _("'{value}' is not a name: 1 to 64 characters, no spaces or commas", value=value)
            )
        if value not in out:
            out.append(value)
    if len(out) > MAX_ITEMS:
        raise ProfileError(field, _("{n} given; at most {most}", n=len(out), most=MAX_ITEMS))
    return out


def clean_skills(values: Iterable[str]) -> list[str]:
    skills = _names("skills", values)
    if ANY_SKILL in skills:
        raise ProfileError(
            "skills",
            _("'{any}' is not a skill: it is what a flow names when any agent will do", any=ANY_SKILL),
        )
    return skills


def clean_lines(values: Iterable[str]) -> list[str]:
    return _names("lines", values)


def canonical_language(tag: str) -> str:
    """``ZH-cn`` → ``zh-CN``, ``zh-hant-hk`` → ``zh-Hant-HK`` (BCP 47 letter case)."""
    first, *rest = tag.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            parts.append(part.upper())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def clean_languages(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in values:
        value = str(raw).strip()
        if not _LANGUAGE.match(value):
            raise ProfileError(
                "languages",
                _("'{value}' is not a language tag (write it like zh-CN, yue or en)", value=value),
            )
        tag = canonical_language(value)
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_ITEMS:
        raise ProfileError("languages", _("{n} given; at most {most}", n=len(out), most=MAX_ITEMS))
    return out


def clean_level(value: str) -> str:
    level = str(value).strip().lower()
    if level not in LEVELS:
        raise ProfileError("level", _("'{value}' is not a level: trainee, supervised or agent", value=value))
    return level


def parse_hours(text: str) -> float:
    """What a person types for hours: ``4``, ``3.5``, ``4h``."""
    value = text.strip().lower().removesuffix("h").strip()
    try:
        return float(value)
    except ValueError:
        raise ProfileError(
            "daily_hours", _("'{text}' is not a number of hours (e.g. 4 or 3.5)", text=text)
        ) from None


def hours_to_minutes(hours: float) -> int:
    """The daily target in whole minutes; more than 0 and at most 24 hours."""
    if not math.isfinite(hours) or not 0 < hours <= MAX_DAILY_HOURS:
        raise ProfileError(
            "daily_hours",
            _("{hours} is out of range: more than 0, at most 24 hours", hours=format(hours, "g")),
        )
    minutes = round(hours * 60)
    if minutes < 1:
        raise ProfileError("daily_hours", _("{hours} is less than a minute", hours=format(hours, "g")))
    return minutes


# ---------------------------------------------------------------- the rows


def require_agent(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise AgentNotFound(name)
    if user.role is not Role.agent:
        raise NotAnAgent(name, user.role)
    return user


def _view(user: User, profile: AgentProfile | None, endpoint: str | None) -> Profile:
    minutes = profile.daily_target_minutes if profile is not None else DEFAULT_DAILY_MINUTES
    return Profile(
        name=user.name,
        display_name=user.display_name,
        disabled=user.disabled,
        endpoint=endpoint,
        skills=list(profile.skills or []) if profile is not None else [],
        lines=list(profile.lines or []) if profile is not None else [],
        languages=list(profile.languages or []) if profile is not None else [],
        daily_target_minutes=minutes,
        daily_hours=round(minutes / 60, 2),
        manual_dial=bool(profile.manual_dial) if profile is not None else False,
        level=(profile.level or FULL_LEVEL) if profile is not None else FULL_LEVEL,
    )


def get_profile(session: Session, name: str) -> Profile:
    """The agent's profile (the defaults when nobody has set one yet)."""
    user = require_agent(session, name)
    endpoint = session.scalar(select(SipAccount.endpoint).where(SipAccount.user_id == user.id))
    return _view(user, session.get(AgentProfile, user.id), endpoint)


def list_profiles(session: Session) -> list[Profile]:
    """Every agent's profile, by name; disabled agents too (they say so)."""
    rows = session.execute(
        select(User, AgentProfile, SipAccount.endpoint)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .outerjoin(SipAccount, SipAccount.user_id == User.id)
        .where(User.role == Role.agent)
        .order_by(User.name)
    ).all()
    return [_view(user, profile, endpoint) for user, profile, endpoint in rows]


def update_profile(
    session: Session,
    name: str,
    *,
    actor: str,
    skills: Iterable[str] | None = None,
    lines: Iterable[str] | None = None,
    languages: Iterable[str] | None = None,
    daily_hours: float | None = None,
    manual_dial: bool | None = None,
    level: str | None = None,
) -> tuple[Profile, list[str]]:
    """Set the given parts of an agent's profile (None: leave as is). Returns the profile and the
    fields that changed; a change is audited with each changed field's before and after."""
    wanted: dict[str, Any] = {}
    if skills is not None:
        wanted["skills"] = clean_skills(skills)
    if lines is not None:
        wanted["lines"] = clean_lines(lines)
    if languages is not None:
        wanted["languages"] = clean_languages(languages)
    if daily_hours is not None:
        wanted["daily_target_minutes"] = hours_to_minutes(daily_hours)
    if manual_dial is not None:
        wanted["manual_dial"] = bool(manual_dial)
    if level is not None:
        wanted["level"] = clean_level(level)
    user = require_agent(session, name)
    profile = session.get(AgentProfile, user.id)
    if profile is None:
        profile = AgentProfile(
            user_id=user.id,
            skills=[],
            lines=[],
            languages=[],
            daily_target_minutes=DEFAULT_DAILY_MINUTES,
            manual_dial=False,
            level=FULL_LEVEL,
        )
        session.add(profile)
    changes: dict[str, dict[str, Any]] = {}
    for field, after in wanted.items():
        before = getattr(profile, field)
        scalar = field in ("daily_target_minutes", "manual_dial", "level")
        before = before if scalar else list(before or [])
        if before != after:
            changes[field] = {"before": before, "after": after}
            setattr(profile, field, after)
    if changes:
        session.flush()
        audit(session, actor, "agent_profile.update", name, changes=changes)
    endpoint = session.scalar(select(SipAccount.endpoint).where(SipAccount.user_id == user.id))
    return _view(user, profile, endpoint), list(changes)
