"""Pacing: how many calls a campaign starts now.

- `model`: the snapshot the engine gives (`PacingSnapshot`), the decision it gets
  (`PacingDecision`: calls to start, a reason code and its parameters), the campaign's settings.
- Policies, one per module: `progressive` (one call per free agent, and the hard abandon cap),
  `adapt` (VICIdial's ADAPT_TAPERED, the anchor), `predictive` (online estimates under the cap).
- `estimators`: live-answer rate and time to answer, talk and wrap-up durations, the abandon ledger.
- `simulator`: a discrete-event simulation that runs these same pacer classes against a traffic
  model (`warmline pacing simulate`, see docs/pacing.md).
- `limits`: channels and calls per second, which the engine applies on top of any pacer.

One pacer per campaign (it learns); the engine calls `decide(snapshot)` on each pass.
"""

from __future__ import annotations

from dialer.pacing.adapt import AdaptPacer, AdaptSettings
from dialer.pacing.limits import AbandonBudget, Capacity, TokenBucket, calls_allowed
from dialer.pacing.model import (
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
    Policy,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing.predictive import PredictivePacer, PredictiveSettings
from dialer.pacing.progressive import ProgressivePacer, capped_calls, progressive_calls


def make_pacer(policy: Policy | str, config: PacingConfig | None = None) -> Pacer:
    """A fresh pacer for one campaign."""
    chosen = Policy(policy)
    if chosen is Policy.progressive:
        return ProgressivePacer()
    if chosen is Policy.adapt:
        return AdaptPacer(config)
    return PredictivePacer(config)


__all__ = [
    "AbandonBudget",
    "AbandonWindow",
    "AdaptPacer",
    "AdaptSettings",
    "BusyAgent",
    "CallerAbandoned",
    "Capacity",
    "DialResolved",
    "DialResult",
    "Observation",
    "Pacer",
    "PacingConfig",
    "PacingDecision",
    "PacingSnapshot",
    "Phase",
    "Policy",
    "PredictivePacer",
    "PredictiveSettings",
    "ProgressivePacer",
    "TalkEnded",
    "TokenBucket",
    "WrapEnded",
    "calls_allowed",
    "capped_calls",
    "make_pacer",
    "progressive_calls",
]
