"""Progressive dialing, and the hard abandon cap every predictive decision is held to.

Progressive: one call in flight for each free agent. Inbound callers waiting for the same
(blended) agents are served first, so they hold agents back; a call already ringing or a live
answer already waiting has its agent. No call can then be abandoned while agents stay at their
posts: the answer always finds the agent it was dialled for.

The hard cap (`capped_calls`): the most calls the pacer may start so that, even if every call in
flight answered live at once and no busy agent came free, the abandoned share of every window
would stay within the limit. With A abandoned out of L live answers kept in the window, R calls
ringing, W answers waiting, I inbound callers waiting and F free agents, n new calls may start when

    A + max(0, R + W + I + n - F) <= limit * (L + R + n)

(every answer adds to L as well: the worst share is when all of them answer, since the share only
grows with each abandoned answer). Each pass re-checks it with what happened since, so between
passes the share can only reach the bound, never pass it. Near the limit the bound shrinks to
progressive by itself; at the start of a campaign (L < 1/limit) it is progressive too.
"""

from __future__ import annotations

import math

from dialer.pacing.model import AbandonWindow, PacingConfig, PacingDecision, PacingSnapshot, Policy


def progressive_calls(s: PacingSnapshot) -> int:
    return max(0, s.agents_free - s.inbound_waiting - len(s.calls_ringing) - s.calls_waiting)


def capped_calls(s: PacingSnapshot, config: PacingConfig) -> int:
    """The most calls the hard cap allows now (never fewer than progressive)."""
    base = progressive_calls(s)
    limit = config.abandon_limit
    ringing = len(s.calls_ringing)
    committed = ringing + s.calls_waiting + s.inbound_waiting - s.agents_free
    allowed: int | None = None
    for window in s.abandon or (AbandonWindow(min(config.windows_s), 0, 0),):
        slack = limit * (window.kept + ringing) - window.abandoned - committed
        bound = math.floor(slack / (1 - limit) + 1e-9)
        allowed = bound if allowed is None else min(allowed, bound)
    return max(base, allowed if allowed is not None else base)


def worst_share(s: PacingSnapshot) -> float:
    return max((w.share for w in s.abandon), default=0.0)


def no_agents(s: PacingSnapshot) -> PacingDecision | None:
    if s.agents_free + len(s.agents_busy) == 0:
        return PacingDecision(0, "no_agents")
    return None


class ProgressivePacer:
    policy = Policy.progressive

    def decide(self, s: PacingSnapshot) -> PacingDecision:
        nobody = no_agents(s)
        if nobody is not None:
            return nobody
        n = progressive_calls(s)
        if s.inbound_waiting and s.agents_free:
            return PacingDecision(n, "inbound_first", {"inbound": s.inbound_waiting})
        if n == 0:
            return PacingDecision(0, "agents_busy")
        return PacingDecision(n, "progressive", {"free": s.agents_free})
