"""The engine's side of pacing: what it follows of a progressive or predictive campaign between
passes, the snapshot it gives the campaign's pacer, and the live figures it publishes.

Each pass, for a paced campaign, the worker

1. reads in a worker thread what the database knows (`read_facts`): the agents who can take the
   campaign's calls (skill and language) with their states from the agents' ledger
   (``available`` = free, ``on_call`` = talking, ``wrap_up``, ``break`` = paused, the rest logged
   out), and the abandon window from the attempts ledger (live answers -- AMD ``HUMAN`` or
   ``NOTSURE`` -- and abandoned ones ended in the campaign's window, and those that will still be in
   it `PacingConfig.horizon_s` from now);
2. adds what only it knows (`PaceTrack`): its calls claimed and not yet resolved (ringing, AMD
   included; those answered and in AMD's analysis marked with the time since the answer), live
   answers waiting inside the grace for an agent, what ended since the last pass
   (dials with their result and time, talk and wrap-up durations from the agents' transitions),
   and inbound callers waiting in the hand-over's queues for the campaign's (blended) agents;
3. asks the pacer, and starts at most that many calls (channels and calls per second still apply).

The figures (`PaceTrack.live`) go into ``campaigns.pacing_live`` so the API and every process
show the same, and onto the bus with the campaign's figures.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from agents import routing
from dialer.campaigns import CampaignSpec
from dialer.models import Attempt, Campaign, CampaignMode
from dialer.pacing import (
    AbandonWindow,
    BusyAgent,
    CallerAbandoned,
    DialResolved,
    DialResult,
    Observation,
    Pacer,
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Phase,
    ProgressivePacer,
    TalkEnded,
    WrapEnded,
    make_pacer,
)

PACED_MODES = frozenset({CampaignMode.progressive, CampaignMode.predictive})
LIVE_AMD = ("HUMAN", "NOTSURE")
OCCUPANCY_HALF_LIFE_S = 900.0  # the occupancy shown weighs the last quarter of an hour most
WAITS_KEPT = 50  # agent waits averaged
PHONE_DIGITS = "零幺二三四五六七八九"  # how a phone number is read out in Mandarin (1 = 幺)


def is_paced(campaign: Campaign) -> bool:
    return campaign.mode in PACED_MODES


def pacing_config(spec: CampaignSpec) -> PacingConfig:
    p = spec.pacing
    return PacingConfig(
        abandon_limit=p.abandon_limit, windows_s=(p.window_hours * 3600.0,), grace_s=p.grace_seconds
    )


def new_pacer(spec: CampaignSpec) -> Pacer:
    if spec.mode is CampaignMode.progressive:
        return ProgressivePacer()
    return make_pacer(spec.pacing.policy, pacing_config(spec))


def spoken_number(caller_id: str | None) -> str:
    """The caller ID's digits as Mandarin reads a phone number out (4001234567 -> 四零零幺二…)."""
    return "".join(PHONE_DIGITS[int(d)] for d in (caller_id or "") if d.isdigit())


def apology_text(spec: CampaignSpec) -> str:
    text = spec.pacing.apology.replace("{callback}", spoken_number(spec.caller_id))
    return text.strip()


# ------------------------------------------------------------------ what the database knows


@dataclass(frozen=True)
class AgentNow:
    agent: str
    state: str
    since: datetime | None


@dataclass(frozen=True)
class Facts:
    """What one pass read from the database for one campaign."""

    now: datetime
    agents: tuple[AgentNow, ...]
    abandon: tuple[AbandonWindow, ...]


def campaign_agents(
    session: Session, campaign: Campaign, now: datetime, tz: str | None = None
) -> tuple[AgentNow, ...]:
    """The agents who can take this campaign's calls, with their current state."""
    return tuple(
        AgentNow(c.agent, c.state, c.state_since)
        for c in routing.candidates(session, now=now, tz=tz)
        if c.has_skill(campaign.skill) and c.speaks(campaign.language) and c.has_level(campaign.min_level)
    )


def abandon_windows(
    session: Session, campaign_id: int, now: datetime, windows_s: Iterable[float], horizon_s: float
) -> tuple[AbandonWindow, ...]:
    """Live answers and abandoned ones ended in each window ending now (the attempts ledger), and
    the live answers still inside it `horizon_s` from now."""
    live = Attempt.amd_status.in_(LIVE_AMD) | (Attempt.outcome == "abandoned")
    out = []
    for window_s in windows_s:
        start = now - timedelta(seconds=window_s)
        kept_from = now + timedelta(seconds=horizon_s - window_s)
        row = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((Attempt.outcome == "abandoned", 1), else_=0)), 0),
                func.coalesce(func.sum(case((Attempt.ended_at > kept_from, 1), else_=0)), 0),
            ).where(
                Attempt.campaign_id == campaign_id, Attempt.ended_at > start, Attempt.ended_at <= now, live
            )
        ).one()
        out.append(AbandonWindow(window_s, int(row[0]), int(row[1]), int(row[2])))
    return tuple(out)


def read_facts(
    session: Session, campaign: Campaign, config: PacingConfig, now: datetime, tz: str | None = None
) -> Facts:
    return Facts(
        now,
        campaign_agents(session, campaign, now, tz),
        abandon_windows(session, campaign.id, now, config.windows_s, config.horizon_s),
    )


# ------------------------------------------------------------------ what the engine follows


def result_of(outcome: str | None) -> DialResult:
    """How a dial that ended before AMD's verdict resolved, from its outcome."""
    if outcome == "busy":
        return DialResult.busy
    if outcome in ("failed", "interrupted"):
        return DialResult.failed
    return DialResult.no_answer


class PaceTrack:
    """One paced campaign as the engine follows it: its pacer, its calls in flight, what ended
    since the last pass, and the live figures. Used on the event loop only."""

    def __init__(self, spec: CampaignSpec, mode: CampaignMode) -> None:
        self.mode = mode
        self.config = pacing_config(spec)
        self.pacer = new_pacer(spec)
        self.ringing: dict[str, float] = {}  # attempt -> when it was claimed (monotonic)
        self.answered_at: dict[str, float] = {}  # ringing attempts answered, AMD analysing -> when
        self.waiting: dict[str, float] = {}  # live answers inside the grace -> since
        self._observations: list[Observation] = []
        self._agents: dict[str, AgentNow] = {}
        self._waits: deque[float] = deque(maxlen=WAITS_KEPT)
        self._busy_s = 0.0
        self._ready_s = 0.0
        self._counts: tuple[int, int] | None = None  # (busy, ready) at the last pass
        self._at: float | None = None
        self.decision: PacingDecision | None = None
        self.live: dict[str, Any] = {}
        self.stored: dict[str, Any] | None = None  # the figures last written to the campaign
        self.dials = 0

    # ---------------------------------------------------- a call's life

    def claimed(self, attempt_id: str, at: float) -> None:
        self.ringing[attempt_id] = at
        self.dials += 1

    def answered(self, attempt_id: str, at: float) -> None:
        """The callee answered; AMD is analysing. Still unresolved (ringing, for the cap), but
        the pacer counts it apart: likelier than a ringing call to need an agent, and soon."""
        if attempt_id in self.ringing:
            self.answered_at.setdefault(attempt_id, at)

    def resolved(self, attempt_id: str, at: float, result: DialResult) -> None:
        started = self.ringing.pop(attempt_id, None)
        answered = self.answered_at.pop(attempt_id, None)
        if started is None:
            return
        answered_after = None if answered is None else max(0.0, answered - started)
        self._observations.append(DialResolved(max(0.0, at - started), result, answered_after))
        if result is DialResult.live:
            self.waiting[attempt_id] = at

    def agent_took(self, attempt_id: str) -> None:
        self.waiting.pop(attempt_id, None)

    def ended(self, attempt_id: str, at: float, outcome: str | None) -> None:
        if attempt_id in self.ringing:
            self.resolved(attempt_id, at, result_of(outcome))
        self.waiting.pop(attempt_id, None)
        if outcome == "abandoned":
            self._observations.append(CallerAbandoned())

    def forget(self, attempt_id: str) -> None:
        """Nothing was dialled (Asterisk unreachable): as if never claimed."""
        self.answered_at.pop(attempt_id, None)
        if self.ringing.pop(attempt_id, None) is not None:
            self.dials -= 1
        self.waiting.pop(attempt_id, None)

    # ---------------------------------------------------- the agents' transitions

    def _see_agents(self, agents: tuple[AgentNow, ...]) -> None:
        for a in agents:
            before = self._agents.get(a.agent)
            self._agents[a.agent] = a
            if before is None or (before.state, before.since) == (a.state, a.since):
                continue
            if before.since is None or a.since is None:
                continue
            lasted = max(0.0, (a.since - before.since).total_seconds())
            if before.state == "on_call":
                self._observations.append(TalkEnded(lasted))
            elif before.state == "wrap_up":
                self._observations.append(WrapEnded(lasted, ready_again=a.state == "available"))
            elif before.state == "available" and a.state == "on_call":
                self._waits.append(lasted)

    def _count_time(self, at: float, busy: int, ready: int) -> None:
        if self._at is not None and self._counts is not None:
            dt = max(0.0, at - self._at)
            keep = 0.5 ** (dt / OCCUPANCY_HALF_LIFE_S)
            was_busy, was_ready = self._counts
            self._busy_s = self._busy_s * keep + was_busy * dt
            self._ready_s = self._ready_s * keep + was_ready * dt
        self._at, self._counts = at, (busy, ready)

    # ---------------------------------------------------- the pass

    @property
    def in_flight(self) -> int:
        """Calls of this campaign that may still need an agent (ringing or waiting)."""
        return len(self.ringing) + len(self.waiting)

    @property
    def agent_names(self) -> frozenset[str]:
        return frozenset(self._agents)

    def snapshot(self, at: float, facts: Facts, inbound_waiting: int, spoken_for: int = 0) -> PacingSnapshot:
        """`spoken_for`: calls in flight of other paced campaigns that share these agents; as many
        free agents are kept for them (two campaigns never dial for the same free agent)."""
        self._see_agents(facts.agents)
        free, busy, paused = 0, [], 0
        for a in facts.agents:
            elapsed = max(0.0, (facts.now - a.since).total_seconds()) if a.since else 0.0
            if a.state == "available":
                free += 1
            elif a.state == "on_call":
                busy.append(BusyAgent(Phase.talk, elapsed))
            elif a.state == "wrap_up":
                busy.append(BusyAgent(Phase.wrap, elapsed))
            elif a.state == "break":
                paused += 1
        self._count_time(at, len(busy), free)
        free = max(0, free - spoken_for)
        observations, self._observations = tuple(self._observations), []
        local = facts.now.timetz()
        return PacingSnapshot(
            now=at,
            agents_free=free,
            agents_busy=tuple(busy),
            agents_paused=paused,
            calls_ringing=tuple(max(0.0, at - t) for t in self.ringing.values()),
            calls_answered=tuple(self._since_answer(a, at) for a in self.ringing),
            calls_waiting=len(self.waiting),
            inbound_waiting=inbound_waiting,
            observations=observations,
            abandon=facts.abandon,
            time_of_day_s=local.hour * 3600 + local.minute * 60 + local.second,
        )

    def _since_answer(self, attempt_id: str, at: float) -> float | None:
        answered = self.answered_at.get(attempt_id)
        return None if answered is None else max(0.0, at - answered)

    def decide(self, at: float, facts: Facts, inbound_waiting: int, spoken_for: int = 0) -> PacingDecision:
        s = self.snapshot(at, facts, inbound_waiting, spoken_for)
        self.decision = decision = self.pacer.decide(s)
        window = s.abandon[0] if s.abandon else AbandonWindow(self.config.windows_s[0], 0, 0)
        self.live = {
            "mode": self.mode.value,
            "policy": self.pacer.policy.value,
            "calls": decision.calls_to_start,
            "reason": decision.reason_code,
            "params": dict(decision.reason_params),
            "abandon_rate": round(window.share, 4),
            "abandon_limit": self.config.abandon_limit,
            "window_hours": round(window.window_s / 3600.0, 2),
            "live_answers": window.live_answers,
            "abandoned": window.abandoned,
            "occupancy": self.occupancy(),
            "agent_wait_s": self.agent_wait(),
            "agents_free": s.agents_free,
            "agents_busy": len(s.agents_busy),
            "agents_paused": s.agents_paused,
            "ringing": len(s.calls_ringing),
            "waiting": s.calls_waiting,
            "inbound_waiting": s.inbound_waiting,
        }
        return decision

    def occupancy(self) -> float | None:
        total = self._busy_s + self._ready_s
        return round(self._busy_s / total, 4) if total > 0 else None

    def agent_wait(self) -> float | None:
        return round(sum(self._waits) / len(self._waits), 1) if self._waits else None


def shown_changed(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    """Whether the figures differ enough to write them again (the occupancy's drift alone does
    not, below a percentage point)."""
    if not before:
        return True
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, float) and isinstance(old, float):
            if not math.isclose(value, old, abs_tol=0.01 if key == "occupancy" else 1e-4):
                return True
        elif value != old:
            return True
    return False
