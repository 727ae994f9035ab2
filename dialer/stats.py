"""A campaign's live figures, computed from the database (so every process agrees).

dialled     attempts placed (every attempt row)
answered    attempts the callee picked up
human       answered and not an answering machine (AMD HUMAN or NOTSURE, or no AMD)
machine     answered by an answering machine
confirmed   attempts that ended confirmed
opted_out   attempts that ended with an opt-out
abandoned   answered calls no agent took
live        attempts in progress now
remaining   contacts still to call (pending or in progress)
pacing      progressive and predictive campaigns: the pacer's reason and live figures, as the
            dialer worker stored them (`campaigns.pacing_live`), said in the current locale
reached/exhausted/cancelled  contacts finished reached, out of attempts, put on do-not-call
attempts_per_hour  attempts placed in the last 60 minutes
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.i18n import N_, _
from dialer.models import Attempt, AttemptState, Campaign, CampaignMode, Contact, ContactState

FIGURES = (
    "dialled",
    "answered",
    "human",
    "machine",
    "confirmed",
    "opted_out",
    "abandoned",
    "live",
    "remaining",
    "contacts",
    "reached",
    "exhausted",
    "cancelled",
    "attempts_per_hour",
)
LIVE = (AttemptState.created, AttemptState.dialing, AttemptState.answered)


def campaign_figures(session: Session, campaign: Campaign, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    answered = Attempt.answered_at.is_not(None)
    machine = Attempt.amd_status == "MACHINE"

    def n(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    row = session.execute(
        select(
            func.count(),
            n(answered),
            n(answered & (Attempt.amd_status.is_(None) | (Attempt.amd_status != "MACHINE"))),
            n(machine),
            n(Attempt.outcome == "confirmed"),
            n(Attempt.outcome == "opted_out"),
            n(Attempt.outcome == "abandoned"),
            n(Attempt.state.in_(LIVE)),
            n(Attempt.created_at >= now - timedelta(hours=1)),
        ).where(Attempt.campaign_id == campaign.id)
    ).one()
    states = dict(
        session.execute(
            select(Contact.state, func.count())
            .where(Contact.campaign_id == campaign.id)
            .group_by(Contact.state)
        ).all()
    )

    def c(state: ContactState) -> int:
        return int(states.get(state, 0))

    return {
        "dialled": int(row[0]),
        "answered": int(row[1]),
        "human": int(row[2]),
        "machine": int(row[3]),
        "confirmed": int(row[4]),
        "opted_out": int(row[5]),
        "abandoned": int(row[6]),
        "live": int(row[7]),
        "remaining": c(ContactState.pending) + c(ContactState.in_progress),
        "contacts": sum(int(v) for v in states.values()),
        "reached": c(ContactState.done),
        "exhausted": c(ContactState.exhausted),
        "cancelled": c(ContactState.cancelled),
        "attempts_per_hour": int(row[8]),
    }


def outcome_counts(session: Session, campaign: Campaign) -> dict[str, int]:
    rows = session.execute(
        select(Attempt.outcome, func.count())
        .where(Attempt.campaign_id == campaign.id, Attempt.outcome.is_not(None))
        .group_by(Attempt.outcome)
    ).all()
    return {str(o): int(k) for o, k in sorted(rows)}


def campaign_stats(session: Session, campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """Figures, outcomes per attempt and the campaign's status: what the API and CLI show."""
    now = now or utcnow()
    return {
        "campaign": campaign.name,
        "status": campaign.status.value,
        "at": now.isoformat(),
        "figures": campaign_figures(session, campaign, now),
        "outcomes": outcome_counts(session, campaign),
        "pacing": pacing_figures(campaign),
    }


PACING_LABELS = {
    "reason": N_("Pacer"),
    "abandon": N_("Abandon rate in the window"),
    "occupancy": N_("Agent occupancy"),
    "agent_wait": N_("Agent wait between calls"),
    "agents": N_("Agents free / busy / on a break"),
    "calls": N_("Calls ringing / waiting for an agent"),
}
PACING_ORDER = tuple(PACING_LABELS)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}".rstrip("0").rstrip(".") + "%"


def pacing_figures(campaign: Campaign) -> dict[str, Any] | None:
    """A paced campaign's pacer as the dialer worker last stored it (None: not paced, or the
    worker has not paced it yet), with its reason and figures said in the current locale."""
    from dialer.pacing.model import REASONS, PacingDecision

    live = campaign.pacing_live
    if campaign.mode not in (CampaignMode.progressive, CampaignMode.predictive) or not live:
        return None
    reason = str(live.get("reason", ""))
    text = (
        PacingDecision(int(live.get("calls", 0)), reason, live.get("params") or {}).reason_text()
        if reason in REASONS
        else reason
    )
    occupancy, wait = live.get("occupancy"), live.get("agent_wait_s")
    shown = {
        "reason": text,
        "abandon": _(
            "{rate} of {limit} ({abandoned} of {answers} live answers, last {hours} h)",
            rate=_percent(float(live.get("abandon_rate", 0.0))),
            limit=_percent(float(live.get("abandon_limit", 0.03))),
            abandoned=live.get("abandoned", 0),
            answers=live.get("live_answers", 0),
            hours=format(float(live.get("window_hours", 24)), "g"),
        ),
        "occupancy": _percent(float(occupancy)) if occupancy is not None else _("not measured yet"),
        "agent_wait": _("{seconds} s", seconds=round(float(wait)))
        if wait is not None
        else _("not measured yet"),
        "agents": f"{live.get('agents_free', 0)} / {live.get('agents_busy', 0)} / {live.get('agents_paused', 0)}",
        "calls": f"{live.get('ringing', 0)} / {live.get('waiting', 0)}",
    }
    return {**live, "reason_text": text, "shown": shown}


def stats_text(stats: dict[str, Any]) -> str:
    f = stats["figures"]
    lines = [f"{stats['campaign']} ({stats['status']})"]
    lines += [f"  {name.replace('_', ' '):<18} {f[name]}" for name in FIGURES]
    if stats["outcomes"]:
        lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in stats["outcomes"].items()))
    pacing = stats.get("pacing")
    if pacing:
        lines += [f"  {_(PACING_LABELS[key])}: {pacing['shown'][key]}" for key in PACING_ORDER]
    return "\n".join(lines)
