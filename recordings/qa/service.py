"""QA sampling over the database: draw a period's sample once, keep it, show it with its reasons.

    result = draw_sample(session, settings, "2026-W48", seed=None, actor="qa1")

Drawing the same period with the same seed again returns the sample already drawn (nothing is
added twice); the same seed with other parameters is refused, so a sample always means one thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import audit
from core.i18n import _
from core.settings import Settings
from recordings.models import CallRecording, RecordingStatus
from recordings.qa import scorecards
from recordings.qa.models import QaItem, QaSample, SampleKind
from recordings.qa.sampling import (
    MAX_SEED,
    Candidate,
    SamplingError,
    SamplingParams,
    TargetRules,
    default_seed,
    draw_random,
    draw_targeted,
    parse_period,
    reason_text,
)


class ScorecardChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str = "general_call"
    elder_welfare: str | None = "welfare_call"
    campaigns: dict[str, str] = Field(default_factory=dict)


class QaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    random: SamplingParams = Field(default_factory=SamplingParams)
    targeted: TargetRules = Field(default_factory=TargetRules)
    scorecards: ScorecardChoice = Field(default_factory=ScorecardChoice)


def load_config(folder: Path | None = None) -> QaConfig:
    path = (folder or scorecards.CONFIG_DIR) / "sampling.yaml"
    if not path.is_file():
        return QaConfig()
    return QaConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@dataclass
class SampleResult:
    sample: QaSample
    items: list[QaItem]
    created: bool

    def to_dict(self) -> dict[str, Any]:
        random_items = [i for i in self.items if i.sample_kind is SampleKind.random]
        targeted = [i for i in self.items if i.sample_kind is SampleKind.targeted]
        return {
            "period": self.sample.period,
            "seed": self.sample.seed,
            "created": self.created,
            "starts_at": self.sample.starts_at.isoformat(),
            "ends_at": self.sample.ends_at.isoformat(),
            "population": self.sample.population,
            "params": self.sample.params,
            "random": [item_dict(i) for i in random_items],
            "targeted": [item_dict(i) for i in targeted],
            "counts": {"random": len(random_items), "targeted": len(targeted)},
        }


def item_dict(i: QaItem) -> dict[str, Any]:
    return {
        "item_id": i.id,
        "recording_id": i.recording_id,
        "sample_kind": i.sample_kind.value,
        "agent": i.agent,
        "campaign_id": i.campaign_id,
        "stratum": i.stratum,
        "reviewers_needed": i.reviewers_needed,
        "status": i.status.value,
        "reason": i.reason,
        "reason_text": reason_text(i.reason),  # in the reader's language, from the stored reason
    }


def candidates(session: Session, start: Any, end: Any) -> list[Candidate]:
    """The period's agent calls that can be reviewed (registered, not purged)."""
    rows = session.execute(
        select(CallRecording, CallRecording.campaign)
        .where(
            CallRecording.started_at >= start,
            CallRecording.started_at < end,
            CallRecording.agent.is_not(None),
            CallRecording.status != RecordingStatus.purged,
            CallRecording.practice.is_(False),  # a practice call is never sampled as a real one
        )
        .order_by(CallRecording.id)
    )
    out = []
    for rec, campaign_name in rows:
        a = rec.analytics or {}
        out.append(
            Candidate(
                id=rec.id,
                agent=rec.agent or "",
                campaign_id=rec.campaign_id,
                campaign_name=campaign_name,
                duration_s=rec.duration_s,
                longest_silence_s=a.get("longest_silence_s"),
                overtalk_s=a.get("overtalk_s"),
                outcome=rec.outcome,
                escalated=rec.escalated,
            )
        )
    return out


def draw_sample(
    session: Session,
    settings: Settings,
    period: str,
    *,
    seed: int | None = None,
    params: SamplingParams | None = None,
    rules: TargetRules | None = None,
    actor: str,
) -> SampleResult:
    config = load_config()
    params = params or config.random
    rules = rules or config.targeted
    p = parse_period(period, settings.timezone)
    seed = default_seed(p.label) if seed is None else seed
    if not 0 <= seed <= MAX_SEED:
        raise SamplingError(_("seed {seed}: give a whole number from 0 to {most}", seed=seed, most=MAX_SEED))
    stored_params = {"random": params.model_dump(), "targeted": rules.model_dump()}
    existing = session.scalars(
        select(QaSample).where(QaSample.period == p.label, QaSample.seed == seed)
    ).first()
    if existing is not None:
        if existing.params != stored_params:
            raise SamplingError(
                _(
                    "period {period} with seed {seed} was already drawn with other parameters ({params});"
                    " use another seed for another draw",
                    period=p.label,
                    seed=seed,
                    params=existing.params["random"],
                )
            )
        items = list(
            session.scalars(select(QaItem).where(QaItem.sample_id == existing.id).order_by(QaItem.id))
        )
        return SampleResult(existing, items, created=False)

    pool = candidates(session, p.start, p.end)
    sample = QaSample(
        period=p.label,
        seed=seed,
        starts_at=p.start,
        ends_at=p.end,
        params=stored_params,
        population=len(pool),
        created_by=actor,
    )
    session.add(sample)
    session.flush()
    items = []
    for pick in [*draw_random(pool, params, seed), *draw_targeted(pool, rules)]:
        item = QaItem(
            sample_id=sample.id,
            recording_id=pick.recording_id,
            sample_kind=SampleKind(pick.kind),
            agent=pick.agent,
            campaign_id=pick.campaign_id,
            stratum=pick.stratum,
            reason=pick.reason,
            reason_text=pick.reason_text[:500],
            reviewers_needed=pick.reviewers_needed,
        )
        session.add(item)
        items.append(item)
    session.flush()
    audit(
        session,
        actor,
        "qa.sample",
        f"{p.label}#{seed}",
        population=len(pool),
        random=sum(i.sample_kind is SampleKind.random for i in items),
        targeted=sum(i.sample_kind is SampleKind.targeted for i in items),
    )
    return SampleResult(sample, items, created=True)


def sample_text(d: dict[str, Any]) -> str:
    """`warmline qa sample` without --json: every pick with its reason, random and targeted apart."""
    made = _("drawn") if d["created"] else _("already drawn (unchanged)")
    r = d["params"]["random"]
    none = "  " + _("(none)")
    lines = [
        _(
            "QA sample {period} seed {seed}: {made}; {n} agent calls in the period",
            period=d["period"],
            seed=d["seed"],
            made=made,
            n=d["population"],
        ),
        _(
            "random sample (rate {rate}, minimum {least}, cap {most} per agent): {n} calls",
            rate=format(r["rate"], ".0%"),
            least=r["min_per_agent"],
            most=r["max_per_agent"],
            n=d["counts"]["random"],
        ),
    ]
    lines += [f"  {i['recording_id']}  {i['reason_text']}" for i in d["random"]] or [none]
    lines.append(
        _("targeted queue (kept out of the random sample's averages): {n} calls", n=d["counts"]["targeted"])
    )
    lines += [f"  {i['recording_id']}  {i['stratum']}: {i['reason_text']}" for i in d["targeted"]] or [none]
    return "\n".join(lines)


def scorecard_for(recording: CallRecording | None) -> str:
    """The campaign's own scorecard, else the elder-welfare one for a welfare call, else the default."""
    choice = load_config().scorecards
    if recording is not None:
        if recording.campaign in choice.campaigns:
            return choice.campaigns[recording.campaign]
        if recording.elder_welfare and choice.elder_welfare:
            return choice.elder_welfare
    return choice.default
