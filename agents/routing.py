"""Which agent takes the next call: the routing choice of the ACD.

Rules, in order:

1. the agent is ``available`` (their latest state in the ledger, agents.states), not resting after a
   flagged call (a cool-down, agents.help) and not excluded (already rung for this call, or
   reserved by another call in this process);
2. the agent has the skill (``AgentProfile.skills``); an empty skill (or ``any``) means anyone;
   serves the call's inbound line (an agent who lists no lines serves every line; outbound calls
   have no line); speaks the language the call asks for, if it asks (agents.profiles); and is at
   least the level the campaign or line asks for (``min_level``: trainee < supervised < agent);
3. longest idle first: idle since the end of the agent's last call (the first state after their
   latest ``on_call``/``wrap_up``); an agent who has had no call yet counts from their login, and
   one who never had a call at all sorts first;
4. fairness on a tie: fewer calls taken today, then less talk time today, then the name (so the
   choice is reproducible).

:func:`choose_agent` is a pure function over :class:`AgentCandidate` rows; :func:`candidates`
reads them from the database; :func:`reserve_agent` does both and writes the chosen agent's
``on_call`` state in the caller's transaction, so two calls never take the same agent.
:func:`unmet` says which of a campaign's or a line's :class:`Need` no enabled agent can meet at
all (whatever their state), so that is reported when it starts, not found by a waiting caller.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.help.service import active_cooldowns
from agents.models import AgentProfile, AgentStateChange, SipAccount
from core.auth.models import Role, User
from core.db import utcnow
from core.i18n import _

# One reservation at a time in this process (the hand-over's, a transfer's), so two calls never
# choose the same agent between reading the agents' states and writing "on_call". A thread lock:
# reservations run in worker threads.
RESERVE_LOCK = threading.Lock()

CALL_STATES = frozenset({"on_call", "wrap_up"})
ANY_SKILL = "any"  # what a flow's transfer node names when any agent will do
RESERVED_REASON = "routed"
# An agent's level, lowest first: a trainee takes practice calls; a campaign or an inbound line may
# ask for at least ``supervised`` or ``agent`` (``min_level``), and routing never offers it lower.
LEVELS = ("trainee", "supervised", "agent")
FULL_LEVEL = "agent"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AgentCandidate:
    """What routing knows about one agent."""

    agent: str  # the agent's user name (the id used on the bus and in the state ledger)
    endpoint: str  # their PJSIP endpoint
    skills: tuple[str, ...] = ()
    state: str = "logged_out"
    state_since: datetime | None = None
    # When the agent last finished a call (None: no call in the ledger at all).
    last_call_end: datetime | None = None
    calls_today: int = 0
    talk_seconds_today: float = 0.0
    display_name: str | None = field(default=None, compare=False)
    lines: tuple[str, ...] = ()  # inbound lines served (name or number); () serves every line
    languages: tuple[str, ...] = ()  # language tags spoken
    # Resting after a flagged (abusive, escalated, very long) call until then: offered no call.
    cooldown_until: datetime | None = None
    level: str = FULL_LEVEL  # trainee, supervised or agent (LEVELS)

    def has_level(self, min_level: str | None) -> bool:
        return level_at_least(self.level, min_level)

    def has_skill(self, skill: str | None) -> bool:
        return not skill or skill == ANY_SKILL or skill in self.skills

    def serves_line(self, line: Collection[str]) -> bool:
        """``line``: the names an inbound call's line goes by (its name, its number); () outbound.
        Letter case aside: ``Community-Hotline`` in a profile is ``community-hotline``."""
        if not line or not self.lines:
            return True
        names = {name.casefold() for name in line}
        return any(served.casefold() in names for served in self.lines)

    def speaks(self, language: str | None) -> bool:
        return not language or any(language_matches(language, tag) for tag in self.languages)

    def idle_since(self) -> datetime:
        """The moment the agent's idle time counts from (earlier = longer idle)."""
        if self.last_call_end is None:
            return EPOCH
        return self.last_call_end


def level_at_least(level: str, min_level: str | None) -> bool:
    """Whether ``level`` is ``min_level`` or above (None asks for no level; an unknown level is
    below every level, so a typo never lets a trainee onto a real call)."""
    if not min_level:
        return True
    if level not in LEVELS:
        return False
    return LEVELS.index(level) >= LEVELS.index(min_level) if min_level in LEVELS else False


def language_matches(asked: str, spoken: str) -> bool:
    """Whether an agent who lists ``spoken`` can take a call asking for ``asked``: the same tag
    (letter case aside), or ``asked`` is less specific (``zh`` is met by ``zh-CN``)."""
    a, s = asked.lower(), spoken.lower()
    return a == s or s.startswith(a + "-")


@dataclass(frozen=True)
class Need:
    """What a call asks of the agent who takes it."""

    skill: str | None = None
    line: tuple[str, ...] = ()  # the names its inbound line goes by; () for an outbound call
    language: str | None = None
    min_level: str | None = None  # the least agent level (LEVELS); None: any

    def met_by(self, row: AgentCandidate) -> bool:
        return (
            row.has_skill(self.skill)
            and row.serves_line(self.line)
            and row.speaks(self.language)
            and row.has_level(self.min_level)
        )

    def __str__(self) -> str:
        """``an agent with skill 'welfare' on line '12345' who speaks 'yue'`` (current locale)."""
        skilled = self.skill and self.skill != ANY_SKILL
        who = _("an agent with skill '{skill}'", skill=self.skill) if skilled else _("any agent")
        if self.line:
            who = _("{who} on line '{line}'", who=who, line=self.line[0])
        if self.language:
            who = _("{who} who speaks '{language}'", who=who, language=self.language)
        if self.min_level:
            who = _("{who} of level '{level}' or above", who=who, level=self.min_level)
        return who


def eligible(
    rows: Iterable[AgentCandidate],
    skill: str | None,
    exclude: Collection[str] = (),
    *,
    line: Collection[str] = (),
    language: str | None = None,
    ahead: Collection[Need] = (),
    min_level: str | None = None,
) -> list[AgentCandidate]:
    """Who may take the call now; ``ahead``: what the calls ahead of it in its queue ask for (an
    agent one of them could take is theirs)."""
    need = Need(skill, tuple(line), language, min_level)
    return [
        r
        for r in rows
        if r.state == "available"
        and r.cooldown_until is None
        and r.agent not in exclude
        and need.met_by(r)
        and not any(n.met_by(r) for n in ahead)
    ]


def rank(rows: Iterable[AgentCandidate]) -> list[AgentCandidate]:
    """Eligible agents in the order routing offers them the call."""
    return sorted(rows, key=lambda r: (r.idle_since(), r.calls_today, r.talk_seconds_today, r.agent))


def choose_agent(
    rows: Iterable[AgentCandidate],
    skill: str | None = None,
    *,
    exclude: Collection[str] = (),
    prefer: str | None = None,
    line: Collection[str] = (),
    language: str | None = None,
    ahead: Collection[Need] = (),
    min_level: str | None = None,
) -> AgentCandidate | None:
    """The agent who gets the call, or None when nobody suitable is available. `prefer` (the agent
    who promised the callee a callback) gets it when eligible, whoever has been idle longest."""
    ranked = rank(
        eligible(rows, skill, exclude, line=line, language=language, ahead=ahead, min_level=min_level)
    )
    preferred = next((r for r in ranked if r.agent == prefer), None) if prefer else None
    return preferred or (ranked[0] if ranked else None)


def day_start(now: datetime, tz: str | None = None) -> datetime:
    """Midnight of ``now``'s day in ``tz`` (UTC when None), as an aware UTC datetime."""
    if tz:
        from zoneinfo import ZoneInfo

        local = now.astimezone(ZoneInfo(tz))
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def summarise(
    agent: str,
    endpoint: str,
    skills: Iterable[str],
    changes: list[AgentStateChange],
    *,
    now: datetime,
    since_day: datetime,
    display_name: str | None = None,
    lines: Iterable[str] = (),
    languages: Iterable[str] = (),
) -> AgentCandidate:
    """Fold one agent's state changes (oldest first) into a routing row."""
    state, state_since = "logged_out", None
    last_call_end: datetime | None = None
    in_call = False
    calls_today = 0
    talk = 0.0
    talk_from: datetime | None = None
    for change in changes:
        if change.state == "on_call" and change.since >= since_day and state != "on_call":
            calls_today += 1
        if talk_from is not None and change.state != "on_call":
            talk += (change.since - max(talk_from, since_day)).total_seconds()
            talk_from = None
        if change.state == "on_call" and talk_from is None:
            talk_from = change.since
        if change.state in CALL_STATES:
            in_call = True
        elif in_call:
            last_call_end = change.since
            in_call = False
        state, state_since = change.state, change.since
    if talk_from is not None:
        talk += max(0.0, (now - max(talk_from, since_day)).total_seconds())
    return AgentCandidate(
        agent=agent,
        endpoint=endpoint,
        skills=tuple(skills),
        state=state,
        state_since=state_since,
        last_call_end=last_call_end,
        calls_today=calls_today,
        talk_seconds_today=max(0.0, talk),
        display_name=display_name,
        lines=tuple(lines),
        languages=tuple(languages),
    )


def candidates(
    session: Session, *, now: datetime | None = None, tz: str | None = None, lookback_days: int = 7
) -> list[AgentCandidate]:
    """Every enabled agent with a SIP account, summarised from the ledger of the last days."""
    now = now or utcnow()
    since_day = day_start(now, tz)
    horizon = min(since_day, now - timedelta(days=lookback_days))
    agents = _agent_rows(session)
    if not agents:
        return []
    names = [a.name for a in agents]
    by_agent: dict[str, list[AgentStateChange]] = {n: [] for n in names}
    # The change in force at the horizon, then everything since.
    for name in names:
        before = session.scalar(
            select(AgentStateChange)
            .where(AgentStateChange.agent == name, AgentStateChange.since < horizon)
            .order_by(AgentStateChange.since.desc(), AgentStateChange.id.desc())
            .limit(1)
        )
        if before is not None:
            by_agent[name].append(before)
    recent = session.scalars(
        select(AgentStateChange)
        .where(AgentStateChange.agent.in_(names), AgentStateChange.since >= horizon)
        .order_by(AgentStateChange.since, AgentStateChange.id)
    )
    for change in recent:
        by_agent[change.agent].append(change)
    resting = active_cooldowns(session, now, names)
    return [
        replace(
            summarise(
                a.name,
                a.endpoint,
                a.skills,
                by_agent[a.name],
                now=now,
                since_day=since_day,
                display_name=a.display_name,
                lines=a.lines,
                languages=a.languages,
            ),
            cooldown_until=resting.get(a.name),
            level=a.level,
        )
        for a in agents
    ]


@dataclass(frozen=True)
class _AgentRow:
    name: str
    display_name: str | None
    endpoint: str
    skills: tuple[str, ...]
    lines: tuple[str, ...]
    languages: tuple[str, ...]
    level: str = FULL_LEVEL


def _agent_rows(session: Session) -> list[_AgentRow]:
    """Every enabled agent with a SIP account (whom routing can ring) and their profile."""
    rows = session.execute(
        select(
            User.name,
            User.display_name,
            SipAccount.endpoint,
            AgentProfile.skills,
            AgentProfile.lines,
            AgentProfile.languages,
            AgentProfile.level,
        )
        .join(SipAccount, SipAccount.user_id == User.id)
        .outerjoin(AgentProfile, AgentProfile.user_id == User.id)
        .where(User.role == Role.agent, User.disabled.is_(False))
        .order_by(User.name)
    )
    return [
        _AgentRow(
            name,
            display,
            endpoint,
            tuple(skills or ()),
            tuple(lines or ()),
            tuple(langs or ()),
            level or FULL_LEVEL,  # no profile yet: full level, as before levels existed
        )
        for name, display, endpoint, skills, lines, langs, level in rows
    ]


def routable(session: Session) -> list[AgentCandidate]:
    """Every agent routing could ever ring, with their profile (no state: not read)."""
    return [
        AgentCandidate(
            agent=a.name,
            endpoint=a.endpoint,
            skills=a.skills,
            display_name=a.display_name,
            lines=a.lines,
            languages=a.languages,
            level=a.level,
        )
        for a in _agent_rows(session)
    ]


@dataclass(frozen=True)
class Gap:
    """A need that no enabled agent can meet: what is missing first, and why, in words."""

    need: Need
    missing: Literal["agent", "skill", "line", "language", "level"]
    reason: str

    def __str__(self) -> str:
        return _("{need}: {reason}", need=str(self.need), reason=self.reason)


def _names(rows: Iterable[AgentCandidate]) -> str:
    names = [r.agent for r in rows]
    shown = _(", ").join(names[:5])
    return _("{names} and {n} more", names=shown, n=len(names) - 5) if len(names) > 5 else shown


def gap(rows: Sequence[AgentCandidate], need: Need) -> Gap | None:
    """Why no agent of ``rows`` can meet ``need`` (None: some can)."""
    if any(need.met_by(r) for r in rows):
        return None
    if not rows:
        return Gap(need, "agent", _("there is no enabled agent at all"))
    skilled = [r for r in rows if r.has_skill(need.skill)]
    if not skilled:
        return Gap(need, "skill", _("no enabled agent has skill '{skill}'", skill=need.skill))
    on_line = [r for r in skilled if r.serves_line(need.line)]
    if not on_line:
        who = (
            _("the agents with skill '{skill}'", skill=need.skill)
            if len(skilled) < len(rows)
            else _("the agents")
        )
        reason = _(
            "{who} ({names}) do not serve line '{line}'", who=who, names=_names(skilled), line=need.line[0]
        )
        return Gap(need, "line", reason)
    speaking = [r for r in on_line if r.speaks(need.language)]
    if not speaking:
        return Gap(
            need,
            "language",
            _(
                "none of the agents who could take it ({names}) speaks '{language}'",
                names=_names(on_line),
                language=need.language,
            ),
        )
    return Gap(
        need,
        "level",
        _(
            "none of the agents who could take it ({names}) is of level '{level}' or above",
            names=_names(speaking),
            level=need.min_level,
        ),
    )


def unmet(session: Session, needs: Iterable[Need]) -> list[Gap]:
    """The needs no enabled agent can meet, whoever is logged in now (each need once)."""
    rows = routable(session)
    found = (gap(rows, need) for need in dict.fromkeys(needs))
    return [g for g in found if g is not None]


def set_state(
    session: Session, agent: str, state: str, reason: str, *, since: datetime | None = None
) -> None:
    """Write a state change for an agent from the server side (routing, the bridge)."""
    from agents.states import record_state
    from core.messages import AgentState

    record_state(
        session,
        AgentState(agent=agent, state=state, reason=reason, since=since or utcnow()),
    )


def reserve_agent(
    session: Session,
    skill: str | None,
    *,
    exclude: Collection[str] = (),
    now: datetime | None = None,
    tz: str | None = None,
    prefer: str | None = None,
    line: Collection[str] = (),
    language: str | None = None,
    ahead: Collection[Need] = (),
    min_level: str | None = None,
) -> AgentCandidate | None:
    """Choose an agent (`prefer` first when eligible) and mark them ``on_call`` (reason ``routed``)
    in this transaction; never one below ``min_level``."""
    now = now or utcnow()
    chosen = choose_agent(
        candidates(session, now=now, tz=tz),
        skill,
        exclude=exclude,
        prefer=prefer,
        line=line,
        language=language,
        ahead=ahead,
        min_level=min_level,
    )
    if chosen is not None:
        set_state(session, chosen.agent, "on_call", RESERVED_REASON, since=now)
    return chosen


def release_agent(
    session: Session, agent: str, state: str, reason: str, *, reserved_at: datetime | None = None
) -> bool:
    """Put a reserved agent into ``state`` unless their softphone has reported something newer
    than our reservation (then the softphone knows best). True when written."""
    from agents.states import current_state

    latest = current_state(session, agent)
    if (
        latest is not None
        and reserved_at is not None
        and latest.since > reserved_at
        and latest.reason != RESERVED_REASON
    ):
        return False
    now = utcnow()
    if latest is not None and latest.since >= now:
        now = latest.since + timedelta(microseconds=1)
    set_state(session, agent, state, reason, since=now)
    return True
