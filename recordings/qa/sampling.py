"""Fair QA samples: a stratified random draw per agent × campaign, and a targeted queue by rules.

Pure functions over candidates (no database), so the draw can be tested and explained.

**Random.** The period's agent calls are grouped into strata, one per agent × campaign. Each
stratum draws with its own `random.Random`, seeded from the sample's seed and the stratum's key,
over its recording ids in sorted order: the same seed and the same calls always give the same
sample, and a call added to one stratum changes no other stratum's draw. A stratum shuffles its
ids once (the shuffle's order is the "draw number") and takes the first `n`:

- `n` = ⌊rate × N⌋, plus one more when a uniform draw `u` falls below the fraction left over, so
  every call has exactly `rate` chance of being picked (no rounding bias against small strata);
- an agent below `min_per_agent` in total is topped up from their strata in turn (next draw of
  each stratum), so every agent gets feedback, however few calls they took;
- an agent above `max_per_agent` is cut back, the last draws of their largest stratum first.

A share of the random picks (`double_score_rate`) is marked for blind double scoring
(calibration): two reviewers score them without seeing each other's answers.

**Targeted.** Rules over the analytics and the call's outcome pick calls worth a look: very short
calls, long dead air, heavy overtalk, opt-outs, welfare escalations. They form a separate queue
(`sample_kind = targeted`) and never count in the random sample's averages, which would otherwise
be biased towards bad calls.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from core.i18n import N_, _

MAX_SEED = 2**31 - 1


class SamplingError(ValueError):
    """A period or a parameter a person typed wrong; the message says what to type."""


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = Field(default=0.05, gt=0, le=1, description="share of each stratum drawn")
    min_per_agent: int = Field(default=2, ge=0, description="at least this many per agent, if they have them")
    max_per_agent: int = Field(default=10, ge=1, description="at most this many per agent")
    double_score_rate: float = Field(
        default=0.1, ge=0, le=1, description="share of random picks scored twice"
    )


class TargetRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    short_call_s: float | None = Field(default=20.0, description="calls shorter than this")
    dead_air_s: float | None = Field(default=10.0, description="a silence at least this long")
    overtalk_s: float | None = Field(default=8.0, description="overtalk totalling at least this")
    opt_outs: bool = True
    welfare_escalations: bool = True
    opt_out_outcomes: list[str] = Field(default_factory=lambda: ["opted_out"])
    welfare_outcomes: list[str] = Field(default_factory=lambda: ["help"])


@dataclass(frozen=True)
class Candidate:
    """A recording as sampling sees it."""

    id: str
    agent: str
    campaign_id: int | None
    campaign_name: str | None = None
    duration_s: float | None = None
    longest_silence_s: float | None = None
    overtalk_s: float | None = None
    outcome: str | None = None
    escalated: bool = False

    @property
    def stratum_key(self) -> tuple[str, int]:
        return (self.agent, -1 if self.campaign_id is None else self.campaign_id)

    @property
    def stratum_label(self) -> str:
        if self.campaign_name:
            campaign = self.campaign_name
        elif self.campaign_id is not None:
            campaign = f"campaign {self.campaign_id}"
        else:
            campaign = "no campaign"
        return f"{self.agent} × {campaign}"


@dataclass
class Pick:
    recording_id: str
    kind: str  # random | targeted
    agent: str
    campaign_id: int | None
    stratum: str
    reason: dict[str, Any]
    reason_text: str
    reviewers_needed: int = 1


@dataclass
class Period:
    label: str
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


WEEK = re.compile(r"^(\d{4})-W(\d{1,2})$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_period(text: str, timezone: str = "UTC") -> Period:
    """`2026-W48` (an ISO week), `2026-11-01..2026-11-07` (dates inclusive) or `2026-11-24`, in the
    contact centre's local time zone."""
    text = text.strip()
    tz = ZoneInfo(timezone)
    if m := WEEK.match(text):
        year, week = int(m[1]), int(m[2])
        try:
            first = date.fromisocalendar(year, week, 1)
        except ValueError as exc:
            raise SamplingError(
                _("period '{text}': {year} has no ISO week {week}", text=text, year=year, week=week)
            ) from exc
        last = first + timedelta(days=6)
        label = f"{year}-W{week:02d}"
    else:
        parts = text.split("..")
        if len(parts) > 2 or not all(DAY.match(p) for p in parts):
            raise SamplingError(
                _(
                    "period '{text}': give an ISO week (2026-W48), a date (2026-11-24) or a range"
                    " (2026-11-01..2026-11-07)",
                    text=text,
                )
            )
        try:
            first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[-1])
        except ValueError as exc:
            raise SamplingError(_("period '{text}': {error}", text=text, error=exc)) from exc
        if last < first:
            raise SamplingError(_("period '{text}': the range ends before it starts", text=text))
        label = first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return Period(label, start, end)


def default_seed(period_label: str) -> int:
    """The seed used when none is given: fixed per period, so a plain re-run draws the same."""
    return int(hashlib.sha256(period_label.encode()).hexdigest()[:8], 16) % MAX_SEED


def _stratum_rng(seed: int, key: tuple[str, int]) -> random.Random:
    digest = hashlib.sha256(f"{seed}|{key[0]}|{key[1]}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


@dataclass
class _Stratum:
    key: tuple[str, int]
    label: str
    members: list[Candidate]
    order: list[str] = field(default_factory=list)  # ids in draw order
    expected: float = 0.0
    u: float = 0.0
    by_rate: int = 0
    taken: list[tuple[str, str]] = field(default_factory=list)  # (id, basis)


def draw_random(candidates: list[Candidate], params: SamplingParams, seed: int) -> list[Pick]:
    """The stratified random sample (see the module's docstring). Deterministic in its inputs."""
    groups: dict[tuple[str, int], list[Candidate]] = defaultdict(list)
    for c in candidates:
        groups[c.stratum_key].append(c)
    strata: dict[str, list[_Stratum]] = defaultdict(list)  # per agent
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda c: c.id)
        st = _Stratum(key, members[0].stratum_label, members)
        rng = _stratum_rng(seed, key)
        st.order = [c.id for c in members]
        rng.shuffle(st.order)
        st.expected = params.rate * len(members)
        st.u = rng.random()
        base = math.floor(st.expected + 1e-9)
        st.by_rate = min(len(members), base + (1 if st.u < st.expected - base - 1e-9 else 0))
        st.taken = [(i, "rate") for i in st.order[: st.by_rate]]
        strata[key[0]].append(st)

    for agent_strata in strata.values():
        total = sum(len(s.taken) for s in agent_strata)
        # Minimum per agent: one more from each stratum in turn, in the strata's sorted order.
        while total < params.min_per_agent:
            grew = False
            for st in agent_strata:
                if total >= params.min_per_agent:
                    break
                if len(st.taken) < len(st.order):
                    st.taken.append((st.order[len(st.taken)], "minimum"))
                    total += 1
                    grew = True
            if not grew:
                break
        # Cap per agent: drop the last draw of the largest stratum (ties: the later stratum).
        while total > params.max_per_agent:
            biggest = max(reversed(agent_strata), key=lambda s: len(s.taken))
            biggest.taken.pop()
            total -= 1

    picks: list[Pick] = []
    for agent in sorted(strata):
        agent_total = sum(len(s.taken) for s in strata[agent])
        for st in strata[agent]:
            by_id = {c.id: c for c in st.members}
            for rank, (rid, basis) in enumerate(st.taken, start=1):
                c = by_id[rid]
                draw_no = st.order.index(rid) + 1
                reason = {
                    "basis": basis,
                    "stratum": st.label,
                    "stratum_size": len(st.members),
                    "rate": params.rate,
                    "expected": round(st.expected, 3),
                    "u": round(st.u, 4),
                    "taken_by_rate": st.by_rate,
                    "draw": draw_no,
                    "rank": rank,
                    "agent_total": agent_total,
                    "min_per_agent": params.min_per_agent,
                    "max_per_agent": params.max_per_agent,
                    "seed": seed,
                }
                picks.append(
                    Pick(rid, "random", c.agent, c.campaign_id, st.label, reason, _random_text(reason))
                )
    _mark_double(picks, params.double_score_rate, seed)
    return picks


def _random_text(r: dict[str, Any]) -> str:
    st = _(
        "rate {rate} of {size} = {expected} expected, {taken} taken (u={u})",
        rate=format(r["rate"], ".0%"),
        size=r["stratum_size"],
        expected=format(r["expected"], "g"),
        taken=r["taken_by_rate"],
        u=format(r["u"], ".2f"),
    )
    text = _(
        "random: draw {draw} of {size} in {stratum} ({how})",
        draw=r["draw"],
        size=r["stratum_size"],
        stratum=r["stratum"],
        how=st,
    )
    if r["basis"] == "minimum":
        text += _("; added to reach the minimum of {n} per agent", n=r["min_per_agent"])
    if r.get("calibration"):
        text += _(CALIBRATION)
    return text


CALIBRATION = N_("; blind double scoring (calibration)")


def reason_text(reason: dict[str, Any]) -> str:
    """Why a call was picked, for a person, in the current locale (from the stored reason)."""
    if "rules" in reason:
        return _targeted_text(reason["rules"])
    if reason.get("practice"):
        return _(
            "practice call: scenario '{scenario}', put up by {by}",
            scenario=reason.get("scenario", "-"),
            by=reason.get("by", "-"),
        )
    return _random_text(reason)


def _mark_double(picks: list[Pick], rate: float, seed: int) -> None:
    """Mark round(rate × picks) random picks for blind double scoring, chosen by the seed."""
    n = round(rate * len(picks))
    if n <= 0:
        return
    rng = random.Random(int(hashlib.sha256(f"{seed}|calibration".encode()).hexdigest()[:16], 16))
    chosen = set(rng.sample(sorted(p.recording_id for p in picks), n))
    for p in picks:
        if p.recording_id in chosen:
            p.reviewers_needed = 2
            p.reason["calibration"] = True
            p.reason_text += _(CALIBRATION)


def rule_hits(c: Candidate, rules: TargetRules) -> list[dict[str, Any]]:
    """The targeting rules a call meets, each with the value that met it."""
    hits: list[dict[str, Any]] = []
    if rules.short_call_s is not None and c.duration_s is not None and c.duration_s < rules.short_call_s:
        hits.append({"rule": "short_call", "value": c.duration_s, "threshold": rules.short_call_s})
    if (
        rules.dead_air_s is not None
        and c.longest_silence_s is not None
        and c.longest_silence_s >= rules.dead_air_s
    ):
        hits.append({"rule": "dead_air", "value": c.longest_silence_s, "threshold": rules.dead_air_s})
    if rules.overtalk_s is not None and c.overtalk_s is not None and c.overtalk_s >= rules.overtalk_s:
        hits.append({"rule": "overtalk", "value": c.overtalk_s, "threshold": rules.overtalk_s})
    if rules.opt_outs and c.outcome in rules.opt_out_outcomes:
        hits.append({"rule": "opt_out", "value": c.outcome})
    if rules.welfare_escalations and (c.escalated or c.outcome in rules.welfare_outcomes):
        hits.append({"rule": "welfare_escalation", "value": c.outcome if not c.escalated else "escalated"})
    return hits


RULE_TEXT = {
    "short_call": N_("very short call: {value} s (under {threshold} s)"),
    "dead_air": N_("long dead air: {value} s silence (at least {threshold} s)"),
    "overtalk": N_("heavy overtalk: {value} s (at least {threshold} s)"),
    "opt_out": N_("opt-out ({value})"),
    "welfare_escalation": N_("welfare escalation ({value})"),
}


def _targeted_text(hits: list[dict[str, Any]]) -> str:
    def one(hit: dict[str, Any]) -> str:
        shown = {k: f"{v:g}" if isinstance(v, float | int) else v for k, v in hit.items() if k != "rule"}
        return _(RULE_TEXT[hit["rule"]], **shown)

    return _("targeted: {rules}", rules="; ".join(one(h) for h in hits))


def draw_targeted(candidates: list[Candidate], rules: TargetRules) -> list[Pick]:
    picks = []
    for c in sorted(candidates, key=lambda c: (c.stratum_key, c.id)):
        hits = rule_hits(c, rules)
        if hits:
            text = _targeted_text(hits)
            picks.append(
                Pick(c.id, "targeted", c.agent, c.campaign_id, c.stratum_label, {"rules": hits}, text)
            )
    return picks
