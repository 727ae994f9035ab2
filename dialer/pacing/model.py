"""What the engine tells the pacer (a snapshot) and what the pacer answers (a decision).

The engine asks once per pass: "how many calls should this campaign start now?" It describes the
campaign as it is at that instant (`PacingSnapshot`): agents logged into the campaign and free,
agents busy with how long they have been talking or wrapping up, calls ringing with their ages,
live answers waiting for an agent, inbound callers waiting for the same (blended) agents, what
ended since the previous snapshot, and the abandon counts over the campaign's windows. Times are
seconds on the engine's own monotonic clock (`now`): the pacer never reads a wall clock.

The answer (`PacingDecision`) is a number of calls and a reason as a code plus parameters, so the
console and the bus can carry it and any language can say it (`reason_text`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from core.i18n import N_, _

DAY_S = 86_400.0
MONTH_S = 30 * DAY_S
CALL_HORIZON_S = 120.0  # longer than any call rings and is classified


class Policy(StrEnum):
    progressive = "progressive"
    adapt = "adapt"
    predictive = "predictive"


class Phase(StrEnum):
    talk = "talk"
    wrap = "wrap"


class DialResult(StrEnum):
    """How a dial ended, as the dialer saw it (AMD's verdict, not the truth)."""

    live = "live"  # answered and classified as a person: needs an agent within the grace
    machine = "machine"
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"


@dataclass(frozen=True)
class BusyAgent:
    phase: Phase
    elapsed_s: float  # time in the current phase


@dataclass(frozen=True)
class DialResolved:
    """A dial the pacer counted as ringing has ended: `after_s` from its start to the result;
    `answered_after_s` from its start to the callee's answer (AMD starts there), None if it was
    never answered or the engine cannot tell."""

    after_s: float
    result: DialResult
    answered_after_s: float | None = None


@dataclass(frozen=True)
class TalkEnded:
    duration_s: float


@dataclass(frozen=True)
class WrapEnded:
    duration_s: float
    ready_again: bool  # False: the agent went on a break or logged out instead


@dataclass(frozen=True)
class CallerAbandoned:
    """A live answer found no agent within the grace (it is also in the abandon counts)."""


Observation = DialResolved | TalkEnded | WrapEnded | CallerAbandoned


@dataclass(frozen=True)
class AbandonWindow:
    """Live answers and abandoned ones over one of the campaign's windows (24 h, 30 days).

    `live_answers_kept` is how many of those answers are still inside the window
    `PacingConfig.horizon_s` from now (the older ones will have left it by then); the
    hard cap budgets against it. None: the same as `live_answers`.
    """

    window_s: float
    live_answers: int
    abandoned: int
    live_answers_kept: int | None = None

    @property
    def share(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def kept(self) -> int:
        return self.live_answers if self.live_answers_kept is None else self.live_answers_kept


@dataclass(frozen=True)
class PacingSnapshot:
    now: float
    agents_free: int  # logged into the campaign, ready, no call started for anyone yet
    agents_busy: tuple[BusyAgent, ...] = ()
    agents_paused: int = 0  # logged in but on a break
    calls_ringing: tuple[float, ...] = ()  # seconds since each unresolved outbound call started
    # For each call of `calls_ringing`, in the same order: seconds since it was answered (AMD is
    # analysing it), None while it rings. Empty: the engine does not tell answers apart.
    calls_answered: tuple[float | None, ...] = ()
    calls_waiting: int = 0  # live answers waiting for an agent (inside the grace)
    inbound_waiting: int = 0  # inbound callers waiting for these (blended) agents: served first
    observations: tuple[Observation, ...] = ()  # what ended since the previous snapshot
    abandon: tuple[AbandonWindow, ...] = ()
    time_of_day_s: float | None = None  # seconds since local midnight (ADAPT_TAPERED's clock)

    def __post_init__(self) -> None:
        if self.calls_answered and len(self.calls_answered) != len(self.calls_ringing):
            raise ValueError("calls_answered must name every ringing call, or be empty")

    @property
    def agents_logged_in(self) -> int:
        return self.agents_free + len(self.agents_busy) + self.agents_paused


@dataclass(frozen=True)
class PacingConfig:
    """A campaign's pacing settings."""

    abandon_limit: float = 0.03  # share of live answers that may find no agent, per window
    windows_s: tuple[float, ...] = (DAY_S, MONTH_S)
    # The rule is "an agent within 2 s of the completed greeting". AMD says HUMAN only after the
    # greeting and `after_greeting_silence` (0.8 s in Asterisk's amd.conf): 1.2 s remain.
    grace_s: float = 1.2
    # The hard cap budgets against the live answers still in each window this far ahead
    # (`horizon_s`): longer than any call can ring and be classified (CALL_HORIZON_S would do for
    # that), and an hour because a rolling window also loses older answers as time passes: over
    # several days yesterday's answers leave the 24 h window while today's abandons stay, and the
    # share rises with no new abandon. In a campaign's first 23 hours nothing leaves a 24 h
    # window: no effect there.
    guard_horizon_s: float = 3600.0
    max_calls_per_agent: float = 4.0  # never more calls in flight than this per logged-in agent

    def __post_init__(self) -> None:
        if not 0 < self.abandon_limit < 1:
            raise ValueError(f"abandon limit must be between 0 and 1, got {self.abandon_limit}")
        if not self.windows_s or min(self.windows_s) <= 0:
            raise ValueError(f"abandon windows must be positive seconds, got {self.windows_s}")

    @property
    def horizon_s(self) -> float:
        """`guard_horizon_s`, at most a 24th of the shortest window (a 1-hour window looks 150 s
        ahead, not its whole length), never under CALL_HORIZON_S."""
        return max(CALL_HORIZON_S, min(self.guard_horizon_s, min(self.windows_s) / 24))


# Reason codes and their sentences (msgids). Parameters are filled by `reason_text`.
REASONS: Mapping[str, str] = {
    "no_agents": N_("no agent available (none logged in, or all on a break): no calls"),
    "agents_busy": N_("every agent busy: waiting for one to be free"),
    "progressive": N_("progressive: one call for each of {free} free agents"),
    "inbound_first": N_("{inbound} inbound callers waiting: agents kept for them"),
    "learning": N_("learning the campaign: one call per free agent until {needed} more calls end"),
    "predicting": N_(
        "predictive: {calls} calls for {free} free agents and {soon} expected free, live answers {answer_rate}"
    ),
    "holding_back": N_("holding back: abandon {rate} of {limit}"),
    "abandon_cap": N_("at the abandon cap: one call per free agent (abandon {rate} of {limit})"),
    "adapt_level": N_("dial level {level}: {calls} calls for {agents} agents"),
    "adapt_loop": N_("dial level {level}: next dialing pass in {seconds} s"),
}
PERCENT_PARAMS = frozenset({"rate", "limit", "answer_rate"})


@dataclass(frozen=True)
class PacingDecision:
    calls_to_start: int
    reason_code: str
    reason_params: Mapping[str, float | int | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.calls_to_start < 0:
            raise ValueError(f"calls to start cannot be negative, got {self.calls_to_start}")
        if self.reason_code not in REASONS:
            raise ValueError(f"unknown pacing reason {self.reason_code!r}")

    def reason_text(self) -> str:
        """The reason in the current locale ("holding back: abandon 2.7% of 3%")."""
        return _(REASONS[self.reason_code], **_shown(self.reason_params))


def _shown(params: Mapping[str, float | int | str]) -> dict[str, str]:
    shown = {}
    for key, value in params.items():
        if key in PERCENT_PARAMS and isinstance(value, float | int):
            shown[key] = f"{100 * value:.1f}".rstrip("0").rstrip(".") + "%"
        else:
            shown[key] = str(value)
    return shown


class Pacer(Protocol):
    """Decides how many calls a campaign starts now. One instance per campaign: it learns."""

    policy: Policy

    def decide(self, snapshot: PacingSnapshot) -> PacingDecision: ...
