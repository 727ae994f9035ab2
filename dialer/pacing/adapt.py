"""VICIdial's ADAPT_TAPERED, reproduced as the anchor the predictive pacer is measured against.

Read (not copied) from VICIdial 2.4's published source, repository inktel/Vicidial at commit
9e65b4ce6ae30108dfd8a9a70fb54daabcbeb6b2: `bin/AST_VDadapt.pl` (subroutines `count_agents_lines`,
`calculate_drops`, `calculate_dial_level` and the main loop's timers) and `bin/AST_VDauto_dial.pl`
(how the dial level becomes calls: "goalcalls"). The later 2.14 file (ccabrerar/vicidial) adds,
by its changelog, an optional UK Ofcom drop calculation (`ofcom_uk_drop_calc`, off by default);
it is not reproduced here. What 2.4 does, in VICIdial's own units:

- Every second (`AST_VDadapt.pl`'s loop) it samples the campaign: agents READY (free), calls LIVE
  (answered, waiting for an agent), and all agents logged in (paused ones too). The last 15
  samples are averaged; the "differential" is ready minus waiting.
- Every 15 s it sets the dial level: level x (1 + (differential + dl_diff_target) / agents), the
  percentage scaled by the intensity setting (x (1 + intensity/100) when raising, x |intensity/100
  - 1| when lowering), capped at the maximum level (3.0) and floored at 1.0.
- Every 60 s it counts drops: over the last minute (drops / dials) and today (drops / human
  answers). More than 20 dials in the last minute with over 50% dropped halves the level. More than
  50 dials today with drops over the limit (3%) "tapers": with `adaptive_latest_server_time` (21:00)
  already past, the level goes to 1.0; otherwise it is multiplied by (latest - now) / 1000 in
  HHMM arithmetic, capped at 1 -- so before 11:00 the taper does nothing at all. Then the floor 1.0.
- Every 2.5 s (`AST_VDauto_dial.pl`'s loop) it places round(level x agents) - calls already live
  (ringing, waiting, or with an agent), where agents are the non-paused ones (ready or on a call;
  an agent in the disposition screen -- our wrap-up -- is paused in VICIdial).

Our translation: "today" is the campaign's first abandon window (24 h), a drop is an abandoned
live answer (no agent within the grace), dials are the dials that ended. The optional thresholds
(`dial_level_threshold`, `available_only_tally_threshold`) are off, as in VICIdial's defaults.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialer.pacing.model import (
    CallerAbandoned,
    DialResolved,
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Phase,
    Policy,
)
from dialer.pacing.progressive import no_agents


@dataclass(frozen=True)
class AdaptSettings:
    """VICIdial's campaign fields, with its defaults."""

    dropped_percentage: float = 3.0  # adaptive_dropped_percentage
    maximum_level: float = 3.0  # adaptive_maximum_level
    latest_server_time: int = 2100  # adaptive_latest_server_time, HHMM
    intensity: float = 0.0  # adaptive_intensity, -40..40
    dl_diff_target: float = 0.0  # adaptive_dl_diff_target
    available_only_ratio_tally: bool = False
    initial_level: float = 1.0  # auto_dial_level when the campaign starts
    dial_loop_s: float = 2.5  # AST_VDauto_dial.pl loop delay
    sample_every_s: float = 1.0  # AST_VDadapt.pl loop delay
    samples: int = 15  # stat_it: samples averaged
    level_every_s: float = 15.0  # diff_ratio_updater
    drops_every_s: float = 60.0  # drop_count_updater


@dataclass
class _Drops:
    calls_today: int = 0
    answers_today: int = 0
    drops_today: int = 0
    calls_minute: int = 0
    drops_minute: int = 0


class AdaptPacer:
    policy = Policy.adapt

    def __init__(self, config: PacingConfig | None = None, settings: AdaptSettings | None = None) -> None:
        self.config = config or PacingConfig()
        self.settings = settings or AdaptSettings()
        self.level = self.settings.initial_level
        self._samples: deque[tuple[int, int, int]] = deque(maxlen=self.settings.samples)
        self._dials: deque[float] = deque()  # when each dial ended (for "today" and "last minute")
        self._drops: deque[float] = deque()
        self._stats = _Drops()
        self._sampled_at: float | None = None
        self._level_at: float | None = None
        self._drops_at: float | None = None
        self._dialled_at: float | None = None

    def decide(self, s: PacingSnapshot) -> PacingDecision:
        self._observe(s)
        st = self.settings
        if self._due(self._sampled_at, st.sample_every_s, s.now):
            self._sampled_at = s.now
            self._samples.append((s.agents_free, s.calls_waiting, s.agents_logged_in))
        if self._due(self._drops_at, st.drops_every_s, s.now):
            self._drops_at = s.now
            self._count_drops(s)
        if self._level_at is None:
            self._level_at = s.now
        elif s.now - self._level_at >= st.level_every_s:
            self._level_at = s.now
            self._calculate_level(s)

        nobody = no_agents(s)
        if nobody is not None:
            return nobody
        level = round(self.level, 3)
        if not self._due(self._dialled_at, st.dial_loop_s, s.now):
            assert self._dialled_at is not None
            wait = round(st.dial_loop_s - (s.now - self._dialled_at), 1)
            return PacingDecision(0, "adapt_loop", {"level": level, "seconds": wait})
        self._dialled_at = s.now
        talking = sum(1 for a in s.agents_busy if a.phase is Phase.talk)
        if st.available_only_ratio_tally:
            agents = s.agents_free
            goal = round(self.level * agents) + talking
        else:
            agents = s.agents_free + talking
            goal = round(max(0.0, agents + st.dl_diff_target) * self.level)
        existing = len(s.calls_ringing) + s.calls_waiting + talking
        calls = max(0, goal - existing)
        return PacingDecision(calls, "adapt_level", {"level": level, "calls": calls, "agents": agents})

    @staticmethod
    def _due(last: float | None, every: float, now: float) -> bool:
        return last is None or now - last >= every - 1e-9

    def _observe(self, s: PacingSnapshot) -> None:
        for o in s.observations:
            if isinstance(o, DialResolved):
                self._dials.append(s.now)
            elif isinstance(o, CallerAbandoned):
                self._drops.append(s.now)
        day = self.config.windows_s[0]
        while self._dials and self._dials[0] <= s.now - day:
            self._dials.popleft()
        while self._drops and self._drops[0] <= s.now - day:
            self._drops.popleft()

    def _count_drops(self, s: PacingSnapshot) -> None:
        """`calculate_drops`: today's and the last minute's dials, answers and drops."""
        minute_ago = s.now - 60.0
        today = s.abandon[0] if s.abandon else None
        self._stats = _Drops(
            calls_today=len(self._dials),
            answers_today=today.live_answers if today else 0,
            drops_today=today.abandoned if today else len(self._drops),
            calls_minute=sum(1 for t in self._dials if t > minute_ago),
            drops_minute=sum(1 for t in self._drops if t > minute_ago),
        )

    def _calculate_level(self, s: PacingSnapshot) -> None:
        """`calculate_dial_level`, for an ADAPT_TAPERED campaign."""
        st = self.settings
        if not self._samples:
            return
        n = len(self._samples)
        ready = sum(r for r, _, _ in self._samples) / n
        waiting = sum(w for _, w, _ in self._samples) / n
        agents = sum(t for _, _, t in self._samples) / n
        if agents <= 0:
            return  # VICIdial only recalculates while agents are logged in
        target = ready - waiting + st.dl_diff_target
        pct = 100.0 * target / agents if target else 0.0
        intensity = st.intensity / 100.0
        scaled = pct * abs(intensity - 1) if pct < 0 else pct * (intensity + 1)
        level = round(self.level * (scaled / 100.0 + 1), 3)
        left = self._hhmm_left(s)
        taper = 1.0 if left is None or left > 1000 else left / 1000.0
        level = min(level, st.maximum_level)
        level = max(level, 1.0)
        d = self._stats
        if d.calls_minute > 20 and 100.0 * d.drops_minute / d.calls_minute > 50:
            level /= 2
        answers = max(1, d.answers_today)
        if d.calls_today > 50 and d.drops_today and 100.0 * d.drops_today / answers > st.dropped_percentage:
            level = 1.0 if left is not None and left < 0 else level * taper
        self.level = max(level, 1.0)

    def _hhmm_left(self, s: PacingSnapshot) -> int | None:
        """adaptive_latest_server_time - now, both as HHMM integers (VICIdial's arithmetic)."""
        if s.time_of_day_s is None:
            return None
        minutes = int(s.time_of_day_s // 60) % (24 * 60)
        return self.settings.latest_server_time - (minutes // 60 * 100 + minutes % 60)
