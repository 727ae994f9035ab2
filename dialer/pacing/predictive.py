"""Predictive dialing under the hard abandon cap.

Each pass the pacer learns from what ended (live-answer rate with forgetting, time to answer, talk
and wrap-up durations, how often an agent comes back after wrap-up) and then adds calls beyond
progressive while each added call costs few expected abandons:

- A new call answers live, if it does, after some time tau: K representative values (quantiles)
  of the live answer times seen so far. At each tau the agents who can take a live answer are the
  free ones plus each busy agent with probability P(its talk and wrap-up end by tau + the grace |
  how long it has been busy) x P(it comes back rather than goes on a break).
- Competing for them: live answers waiting, inbound callers waiting (served first), each ringing
  call with P(it turns live by tau | still unresolved at its age), and the new calls themselves
  with P(live) x P(answered within tau). The live rate used is an upper bound (Wilson, 90%), so a
  rising answer rate is met with caution before the estimate has caught up.
- When the engine tells them apart (`PacingSnapshot.calls_answered`), a call AMD is analysing
  (answered, no verdict yet) counts with P(live by tau | answered b seconds ago), one still
  ringing with P(live by tau | not answered at its age) (`estimators.AnswerSignals`).
- The shortage (demand - supply) at each tau is treated as normal (sums of independent
  Bernoullis). At least max over tau of E[shortage+] callers find no agent; the pacer adds the
  n-th call while it raises that by at most `alpha` per live answer it brings.

`alpha` shrinks as the window's abandoned share approaches the limit (from 60% of the limit to
95% of it) down to zero -- progressive -- and every decision is finally held to the hard cap
(`progressive.capped_calls`), which cannot be passed whatever the estimates say. Until enough
calls have ended to estimate anything, the pacer dials progressively. docs/pacing.md has the
measured trade-off between occupancy and abandons, and what limits it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dialer.pacing.estimators import AnswerRate, AnswerSignals, Durations, ResolutionTimes
from dialer.pacing.estimators.normal import Array, normal_cdf
from dialer.pacing.model import (
    CallerAbandoned,
    DialResolved,
    DialResult,
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Phase,
    Policy,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing.progressive import capped_calls, no_agents, progressive_calls, worst_share

SQRT_2PI = math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class PredictiveSettings:
    alpha_max: float = 0.02  # abandons added per live answer added, while far from the limit
    hold_from: float = 0.6  # share of the limit used at which alpha starts to shrink
    progressive_at: float = 0.95  # share of the limit used at which alpha is zero
    answer_points: int = 6  # K: answer times the marginal call is checked at
    warmup_dials: int = 40  # dials ended before predicting
    warmup_live: int = 10  # of which live answers
    answer_half_life: float = 300.0  # dials
    duration_half_life: float = 200.0  # calls
    resolution_sample: int = 400  # dials
    upper_z: float = 1.2816  # 90% one-sided bound on the live rate
    # Count calls AMD is analysing (answered, no verdict yet) apart from those still ringing, when
    # the engine tells them apart (`PacingSnapshot.calls_answered`).
    answered_signal: bool = True


class PredictivePacer:
    policy = Policy.predictive

    def __init__(self, config: PacingConfig | None = None, settings: PredictiveSettings | None = None):
        self.config = config or PacingConfig()
        self.settings = st = settings or PredictiveSettings()
        self.answer = AnswerRate(half_life=st.answer_half_life)
        self.times = ResolutionTimes(size=st.resolution_sample)
        self.signals = AnswerSignals(size=st.resolution_sample)
        self.talk = Durations(prior_mean=120.0, half_life=st.duration_half_life)
        self.wrap = Durations(prior_mean=20.0, prior_cv=0.5, half_life=st.duration_half_life)
        self.returns = AnswerRate(half_life=100.0, prior=0.95, prior_weight=10.0)

    # ------------------------------------------------------------ learning

    def observe(self, s: PacingSnapshot) -> None:
        for o in s.observations:
            if isinstance(o, DialResolved):
                live = o.result is DialResult.live
                self.answer.record(live)
                self.times.record(o.after_s, live)
                self.signals.record(o.after_s, live, o.answered_after_s)
            elif isinstance(o, TalkEnded):
                self.talk.record(o.duration_s)
            elif isinstance(o, WrapEnded):
                self.wrap.record(o.duration_s)
                self.returns.record(o.ready_again)
            elif isinstance(o, CallerAbandoned):
                pass  # counted through the snapshot's abandon windows

    # ------------------------------------------------------------ deciding

    def decide(self, s: PacingSnapshot) -> PacingDecision:
        self.observe(s)
        nobody = no_agents(s)
        if nobody is not None:
            return nobody
        base = progressive_calls(s)
        st = self.settings
        if self.times.count < st.warmup_dials or self.times.live_count < st.warmup_live:
            needed = max(st.warmup_dials - self.times.count, 0)
            return PacingDecision(base, "learning", {"needed": needed})

        limit = self.config.abandon_limit
        share = worst_share(s)
        pressure = share / limit
        span = st.progressive_at - st.hold_from
        alpha = st.alpha_max * min(1.0, max(0.0, (st.progressive_at - pressure) / span))
        most = math.ceil(self.config.max_calls_per_agent * (s.agents_free + len(s.agents_busy)))
        most -= len(s.calls_ringing) + s.calls_waiting
        capped = capped_calls(s, self.config)
        if alpha <= 0:  # at 95% of the limit: progressive, nothing to predict
            wanted, soon = base, 0
        else:  # looking one call past the cap is enough to tell whether the cap is what holds back
            wanted, soon = self._search(s, base, max(base, min(most, capped + 1)), alpha)
        n = min(wanted, capped)
        shown = {"rate": round(share, 4), "limit": limit}
        if n < wanted:
            return PacingDecision(n, "abandon_cap", shown)
        if pressure > st.hold_from:
            return PacingDecision(n, "holding_back", shown)
        if s.inbound_waiting:
            return PacingDecision(n, "inbound_first", {"inbound": s.inbound_waiting})
        if n == 0:
            return PacingDecision(0, "agents_busy")
        return PacingDecision(
            n,
            "predicting",
            {"calls": n, "free": s.agents_free, "soon": soon, "answer_rate": round(self.answer.rate, 3)},
        )

    def _search(self, s: PacingSnapshot, base: int, most: int, alpha: float) -> tuple[int, int]:
        """(calls to start, agents expected free within the median answer time)."""
        p_hi = self.answer.upper(self.settings.upper_z)
        taus = np.asarray(self.times.live_quantiles(self.settings.answer_points), dtype=np.float64)
        free = self.agents_free_by(s, taus + self.config.grace_s)
        live = self.calls_live_by(s, taus, p_hi)
        fixed = s.agents_free - s.calls_waiting - s.inbound_waiting
        mean = fixed + free.sum(axis=0) - live.sum(axis=0)
        var = (free * (1 - free)).sum(axis=0) + (live * (1 - live)).sum(axis=0)
        soon = float(free[:, len(taus) // 2].sum())
        # Shortage at each horizon: demand - supply, normal; expected abandons >= E[shortage+].
        # Try n = base .. most new calls at once; each is live by tau with probability g.
        g = p_hi * self.times.live_cdf_array(taus)
        calls = np.arange(base, most + 1, dtype=np.float64)[:, None]
        m = -(mean[None, :] - calls * g[None, :])
        sd = np.sqrt(np.maximum(var[None, :] + calls * (g * (1 - g))[None, :], 1e-12))
        z = m / sd
        shortage = (m * normal_cdf(z) + sd * np.exp(-0.5 * z * z) / SQRT_2PI).max(axis=1)
        added = np.diff(shortage) / max(p_hi, 1e-6)  # abandons per live answer, for each extra call
        over = np.flatnonzero(added > alpha)
        extra = int(over[0]) if len(over) else len(added)
        return base + extra, max(0, round(soon))

    def agents_free_by(self, s: PacingSnapshot, horizons: Array) -> Array:
        """P(each busy agent is free, and back rather than on a break, by each horizon): agents x K."""
        talking = np.array([a.elapsed_s for a in s.agents_busy if a.phase is Phase.talk], dtype=np.float64)
        wrapping = np.array([a.elapsed_s for a in s.agents_busy if a.phase is Phase.wrap], dtype=np.float64)
        wrap_left = np.array([self.wrap.quantile(q) for q in (1 / 6, 0.5, 5 / 6)], dtype=np.float64)
        talk_left = horizons[:, None] - wrap_left[None, :]  # talk must end this soon: K x 3
        if len(talking) and talk_left.max() > 0:
            after_talk = self.talk.done_within_array(talking[:, None, None], talk_left[None, :, :])
            after_talk = after_talk.mean(axis=2)
        else:  # nobody can talk and wrap up before the last horizon
            after_talk = np.zeros((len(talking), len(horizons)))
        after_wrap = self.wrap.done_within_array(wrapping[:, None], horizons[None, :])
        both = np.concatenate([after_talk, after_wrap]).reshape(-1, len(horizons))
        return np.asarray(self.returns.rate * both, dtype=np.float64)

    def calls_live_by(self, s: PacingSnapshot, taus: Array, p_live: float) -> Array:
        """P(each ringing call turns live within each tau): calls x K. A call AMD is analysing is
        judged by how long ago it was answered, one still ringing as one not answered yet, when
        the engine tells them apart and enough answered dials have been seen."""
        ages = np.asarray(s.calls_ringing, dtype=np.float64)
        if not self._tells_answers(s):
            return self.times.live_within_array(ages[:, None], taus[None, :], p_live)
        since = np.asarray([-1.0 if b is None else b for b in s.calls_answered], dtype=np.float64)
        analysing = since >= 0
        out = np.empty((len(ages), len(taus)), dtype=np.float64)
        out[~analysing] = self.signals.ringing_live_within(ages[~analysing, None], taus[None, :], p_live)
        out[analysing] = self.signals.analysing_live_within(since[analysing, None], taus[None, :], p_live)
        return out

    def _tells_answers(self, s: PacingSnapshot) -> bool:
        return (
            self.settings.answered_signal
            and bool(s.calls_answered)
            and self.signals.answered_count >= self.settings.warmup_live
        )
