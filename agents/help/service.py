"""The database side of help in a hard call: help requests, abusive flags, cool-downs, and the
record of what supervisors did. Every function writes in the caller's transaction (with its audit
entry), so a request is stored if and only if its audit entry is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.help.models import AgentCooldown, HelpRequest, SupervisorAction
from core.audit import audit
from core.i18n import N_, _, translate

ACTIONS = ("listen", "whisper", "join")
COOLDOWN_REASONS = ("abusive", "escalated", "long_call")

# What the agent hears when a cool-down starts (the softphone speaks it; the API sends it).
COOLDOWN_MESSAGE = N_("You have {minutes} minutes' rest. No call will be offered until {until}.")
# What supervisors read when an agent needs them.
HELP_ALERT = N_("{agent} asks for help on a call.")
CHECK_IN = N_("{agent} ended an abusive call: please check in with them.")
CHECK_IN_AFTER = {
    "escalated": N_("{agent} ended a call escalated to a supervisor: please check in with them."),
    "long_call": N_("{agent} ended a very long call: please check in with them."),
}
# What the caller hears before an abusive call ends (spoken by the IVR's text to speech).
CLOSING_PROMPT = N_(
    "We are ending this call now. If you need help, please call again later. Thank you, goodbye."
)


@dataclass(frozen=True)
class Cooldown:
    agent: str
    until: datetime
    minutes: int
    reason: str


def request_help(session: Session, agent: str, call_ref: str, now: datetime) -> HelpRequest:
    """The agent pressed the help key on ``call_ref``: one open request per call (a second press
    returns the open one)."""
    open_row = session.scalar(
        select(HelpRequest).where(
            HelpRequest.agent == agent,
            HelpRequest.call_ref == call_ref,
            HelpRequest.kind == "help",
            HelpRequest.state == "open",
        )
    )
    if open_row is not None:
        return open_row
    row = HelpRequest(agent=agent, call_ref=call_ref, kind="help", state="open", at=now)
    session.add(row)
    session.flush()
    audit(session, agent, "help.request", call_ref, help_id=row.id)
    return row


def open_requests(session: Session) -> list[HelpRequest]:
    """Requests nobody has answered yet, oldest first (the wallboard's alert list)."""
    return list(
        session.scalars(
            select(HelpRequest).where(HelpRequest.state == "open").order_by(HelpRequest.at, HelpRequest.id)
        )
    )


def flag_abusive(
    session: Session, agent: str, call_ref: str, now: datetime, cooldown_minutes: float
) -> Cooldown:
    """The agent flagged ``call_ref`` as abusive: stored, and a cool-down starts for the agent."""
    session.add(HelpRequest(agent=agent, call_ref=call_ref, kind="abusive", state="open", at=now))
    audit(session, agent, "call.flag_abusive", call_ref)
    return start_cooldown(session, agent, "abusive", now, cooldown_minutes, call_ref=call_ref)


@dataclass(frozen=True)
class RestRules:
    """When a call that has just ended earns its agent a rest (settings: ``escalated_cooldown_minutes``,
    ``long_call_minutes``, ``long_call_cooldown_minutes``)."""

    escalated_minutes: float = 5
    long_call_minutes: float | None = 30  # None: no call is too long
    long_call_rest_minutes: float = 5


def after_call(
    session: Session, agent: str, call_ref: str, talk_seconds: float, now: datetime, rules: RestRules
) -> Cooldown | None:
    """A call of ``agent``'s has ended: escalated to a supervisor (the help key was pressed on it)
    or longer than the limit, it earns a cool-down (the longer rest when both); None otherwise."""
    escalated = session.scalar(
        select(HelpRequest.id)
        .where(HelpRequest.call_ref == call_ref, HelpRequest.agent == agent, HelpRequest.kind == "help")
        .limit(1)
    )
    rests: list[tuple[float, str]] = []
    if escalated is not None:
        rests.append((rules.escalated_minutes, "escalated"))
    limit = rules.long_call_minutes
    if limit is not None and talk_seconds >= limit * 60:
        rests.append((rules.long_call_rest_minutes, "long_call"))
    rests = [r for r in rests if r[0] > 0]
    if not rests:
        return None
    minutes, reason = max(rests)
    return start_cooldown(session, agent, reason, now, minutes, call_ref=call_ref)


def check_in_message(reason: str, agent: str) -> str:
    """What supervisors read when an agent's cool-down starts: check in with them."""
    return _(CHECK_IN_AFTER.get(reason, CHECK_IN), agent=agent)


def start_cooldown(
    session: Session, agent: str, reason: str, now: datetime, minutes: float, *, call_ref: str | None = None
) -> Cooldown:
    if reason not in COOLDOWN_REASONS:
        raise ValueError(f"cool-down reason {reason!r}: one of {', '.join(COOLDOWN_REASONS)}")
    until = now + timedelta(minutes=minutes)
    current = active_cooldowns(session, now).get(agent)
    if current is not None and current > until:  # a longer one already runs: it stands
        until = current
    session.add(AgentCooldown(agent=agent, call_ref=call_ref, reason=reason, started_at=now, until=until))
    audit(
        session, "system", "agent.cooldown", agent, reason=reason, until=until.isoformat(), call_ref=call_ref
    )
    return Cooldown(agent, until, round(minutes), reason)


def resting(session: Session, now: datetime) -> list[AgentCooldown]:
    """The cool-downs running at ``now``, one per agent (the one ending last), by agent."""
    rows = session.scalars(
        select(AgentCooldown).where(AgentCooldown.started_at <= now, AgentCooldown.until > now)
    )
    last: dict[str, AgentCooldown] = {}
    for row in rows:
        if row.agent not in last or row.until > last[row.agent].until:
            last[row.agent] = row
    return [last[a] for a in sorted(last)]


def active_cooldowns(
    session: Session, now: datetime, agents: Iterable[str] | None = None
) -> dict[str, datetime]:
    """Agent -> when their cool-down ends, for every cool-down running at ``now``."""
    query = select(AgentCooldown.agent, AgentCooldown.until).where(
        AgentCooldown.started_at <= now, AgentCooldown.until > now
    )
    if agents is not None:
        query = query.where(AgentCooldown.agent.in_(list(agents)))
    found: dict[str, datetime] = {}
    for agent, until in session.execute(query):
        if agent not in found or until > found[agent]:
            found[agent] = until
    return found


def cooldown_message(minutes: int, until: str) -> str:
    """您有5分钟休息时间 -- the sentence the agent's softphone says (in the asker's language)."""
    return _(COOLDOWN_MESSAGE, minutes=minutes, until=until)


def record_action(
    session: Session,
    supervisor: str,
    call_ref: str,
    action: str,
    endpoint: str,
    now: datetime,
    *,
    agent: str | None,
) -> SupervisorAction:
    """A supervisor's listen / whisper / join, stored (and audited) before Asterisk is asked."""
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: one of {', '.join(ACTIONS)}")
    row = SupervisorAction(
        supervisor=supervisor, call_ref=call_ref, agent=agent, action=action, endpoint=endpoint, at=now
    )
    session.add(row)
    session.flush()
    audit(
        session,
        supervisor,
        f"supervisor.{action}",
        call_ref,
        endpoint=endpoint,
        agent=agent,
        action_id=row.id,
    )
    for request in session.scalars(
        select(HelpRequest).where(HelpRequest.call_ref == call_ref, HelpRequest.state == "open")
    ):
        request.state = "answered"
        request.answered_by = supervisor
    return row


def agent_of_call(session: Session, call_ref: str) -> str | None:
    """The agent who asked for help on (or flagged) this call, if any did."""
    return session.scalar(
        select(HelpRequest.agent)
        .where(HelpRequest.call_ref == call_ref)
        .order_by(HelpRequest.id.desc())
        .limit(1)
    )


def closing_prompt(language: str = "zh-CN") -> str:
    """The closing prompt's text in the caller's language (zh-CN, as the IVR speaks)."""
    return translate(language, CLOSING_PROMPT)
