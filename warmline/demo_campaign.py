"""The demo campaign: a vaccination broadcast over every lab callee behaviour, run for real.

`warmline demo` (and `make demo`) start the lab, the service API in this process and one real
headless softphone for the demo agent (warmline.demo_agent), create the campaign (calling windows
always open, retry after 20 s, at most 2 attempts), import a generated list with several numbers per
callee behaviour (the last digit picks it, DESIGN.md "The lab"), run the dialer in this process with
a progress bar on stderr, and print a table: each contact's outcome against what its callee does,
then the stereo recordings of the calls the agent took (registered, with per-side talk time).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, select

from core.db import Database, utcnow
from core.phones import mask
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.lists.importer import import_list
from dialer.models import Attempt, CampaignStatus, Contact, ContactState
from recordings.models import CallRecording

ACTOR = "demo"
FLOW = "vaccination_reminder"
RETRY_SECONDS = 20
# One agent takes the callees that press 0: their calls are spaced this far apart so each finds
# the agent free (the callee hangs up ~10 s after pressing 0 and would not wait in the queue).
AGENT_CALL_SPACING = 15.0
AGENT_DIGIT = "6"

# Last digit → (what the callee does, the outcomes that match it). 9 talks for a minute but never
# presses a key, so a broadcast flow ends it as no_input, like 1.
BEHAVIOURS: dict[str, tuple[str, frozenset[str]]] = {
    "0": ("answers, presses 1 to confirm", frozenset({"confirmed"})),
    "1": ("answers, listens, presses nothing", frozenset({"no_input"})),
    "2": ("never answers", frozenset({"no_answer"})),
    "3": ("busy", frozenset({"busy"})),
    "4": ("unreachable (congestion)", frozenset({"failed"})),
    "5": ("answering machine", frozenset({"machine_message_left", "machine"})),
    "6": ("presses 0, talks to the agent", frozenset({"agent"})),
    "7": ("presses 9 to opt out", frozenset({"opted_out"})),
    "8": ("answers and hangs up at once", frozenset({"hangup_early"})),
    "9": ("talks ~60 s, presses nothing", frozenset({"no_input"})),
}
# Callee 6 when the demo's agent could not be started: nobody takes the call.
WITHOUT_AGENT = ("presses 0 for an agent (none available)", frozenset({"abandoned"}))
NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞")


def behaviours(agent: bool = True) -> dict[str, tuple[str, frozenset[str]]]:
    """What each callee does and the outcomes that match it, with or without an agent signed in."""
    return BEHAVIOURS if agent else {**BEHAVIOURS, AGENT_DIGIT: WITHOUT_AGENT}


def demo_spec(
    name: str, *, retry_seconds: int = RETRY_SECONDS, max_channels: int = 40, cps: float = 5.0
) -> dict[str, Any]:
    rule = {"delay": f"{retry_seconds}s", "growth": 1, "max_attempts": 2}
    return {
        "name": name,
        "description": "demo: vaccination reminder over every lab callee behaviour",
        "kind": "broadcast",
        "flow": FLOW,
        "windows": {"daily": ["00:00-24:00"]},
        "retry": {
            o: dict(rule)
            for o in ("busy", "no_answer", "machine", "failed", "abandoned", "no_input", "callback")
        },
        "max_attempts": 2,
        "daily_cap": 10,
        "rolling_cap": 10,
        "amd": "leave_message",
        "max_channels": max_channels,
        "calls_per_second": cps,
        "caller_id": "+861012345678",
    }


def demo_list(per_digit: int, digits: str = "0123456789") -> bytes:
    """A CSV list: `per_digit` numbers for each last digit in `digits`, with the flow's fields."""
    lines = ["姓名,电话,clinic,date"]
    for k in range(per_digit):
        for d in digits:
            lines.append(f"{NAMES[int(d)]},138{k + 1:07d}{d},朝阳社区卫生服务中心,三月五日")
    return ("\n".join(lines) + "\n").encode()


def create_demo_campaign(
    db: Database, name: str, per_digit: int, digits: str = "0123456789", **spec_kw: Any
) -> int:
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(demo_spec(name, **spec_kw)), actor=ACTOR)
    listing = io.BytesIO(demo_list(per_digit, digits))
    report = import_list(db, name, listing, f"{name}.csv", actor=ACTOR)
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor=ACTOR)
    return report.accepted


def stagger_agent_calls(db: Database, name: str, spacing: float = AGENT_CALL_SPACING) -> int:
    """Make the contacts whose callee asks for an agent due `spacing` seconds apart (the first at
    once), so the demo's one agent is free for each. Returns how many were spaced."""
    now = utcnow()
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        wanting = [
            c
            for c in session.scalars(
                select(Contact).where(Contact.campaign_id == campaign.id).order_by(Contact.id)
            )
            if c.phone_e164.endswith(AGENT_DIGIT)
        ]
        for i, contact in enumerate(wanting):
            contact.next_due_at = now + timedelta(seconds=i * spacing) if i else None
    return len(wanting)


@dataclass
class Progress:
    total: int
    done: int
    live: int
    attempts: int


def progress_of(db: Database, name: str) -> Progress:
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        states = dict(
            session.execute(
                select(Contact.state, func.count())
                .where(Contact.campaign_id == campaign.id)
                .group_by(Contact.state)
            ).all()
        )
        attempts = int(session.scalar(select(func.count()).where(Attempt.campaign_id == campaign.id)) or 0)
    total = sum(states.values())
    open_ = states.get(ContactState.pending, 0) + states.get(ContactState.in_progress, 0)
    return Progress(total, total - open_, states.get(ContactState.in_progress, 0), attempts)


def bar(p: Progress, started: float, width: int = 30) -> str:
    filled = int(width * p.done / p.total) if p.total else width
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} contacts finished, "
        f"{p.live} calling, {p.attempts} attempts, {time.monotonic() - started:4.0f} s"
    )


async def run_campaign(
    settings: Settings,
    db: Database,
    name: str,
    *,
    now: Callable[[], datetime] = utcnow,
    out: TextIO | None = sys.stderr,
    limit_seconds: float = 900,
) -> None:
    """Dial the campaign until every contact is finished (and no call is live)."""
    worker = DialerWorker(settings, db, now=now, campaigns={name})
    started = time.monotonic()
    last = [0.0]
    shown = [0.0]

    def finished() -> bool:
        if time.monotonic() - last[0] < 0.5:
            return False
        last[0] = time.monotonic()
        p = progress_of(db, name)
        if out is not None:
            tty = out.isatty()
            if tty or time.monotonic() - shown[0] >= 10 or p.done == p.total:
                shown[0] = time.monotonic()
                out.write(bar(p, started) if tty else bar(p, started).lstrip("\r") + "\n")
                out.flush()
        if time.monotonic() - started > limit_seconds:
            raise TimeoutError(f"the demo campaign did not finish in {limit_seconds:.0f} s")
        return p.done == p.total and worker.idle()

    await worker.run(until=finished)
    if out is not None and out.isatty():
        out.write("\n")


def outcome_table(
    db: Database,
    name: str,
    *,
    agent: bool = True,
    recordings: dict[int, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per contact. `agent`: whether an agent was there to take callee 6; `recordings`:
    contact id → its (last) agent-call recording (`campaign_recordings`), added as `recording`."""
    table = behaviours(agent)
    rows: list[dict[str, Any]] = []
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        contacts = list(
            session.scalars(select(Contact).where(Contact.campaign_id == campaign.id).order_by(Contact.id))
        )
        attempts: dict[int, list[Attempt]] = {}
        for a in session.scalars(
            select(Attempt)
            .where(Attempt.campaign_id == campaign.id)
            .order_by(Attempt.contact_id, Attempt.attempt_no)
        ):
            attempts.setdefault(a.contact_id, []).append(a)
        for c in contacts:
            digit = c.phone_e164[-1]
            behaviour, expected = table[digit]
            mine = attempts.get(c.id, [])
            rows.append(
                {
                    "phone": mask(c.phone_e164),
                    "digit": digit,
                    "behaviour": behaviour,
                    "expected": sorted(expected),
                    "outcome": c.last_outcome,
                    "state": c.state.value,
                    "attempts": c.attempts,
                    "match": c.last_outcome in expected,
                    "attempt_outcomes": [a.outcome for a in mine],
                    "attempt_times": [
                        {
                            "started": a.created_at.isoformat(),
                            "ended": a.ended_at.isoformat() if a.ended_at else None,
                        }
                        for a in mine
                    ],
                    "recording": (recordings or {}).get(c.id),
                }
            )
    return rows


def _var_relative(settings: Settings, path: Path) -> str:
    resolved = path.resolve()
    var = settings.var_dir.resolve()
    return str(resolved.relative_to(var)) if resolved.is_relative_to(var) else str(resolved)


def campaign_recordings(settings: Settings, db: Database, name: str) -> dict[int, dict[str, Any]]:
    """The campaign's agent-call recordings by contact (the last one of each), registered first
    (checksum, duration, analytics) when the bridge left them unregistered."""
    from recordings.service import RecordingError, file_of, register_recording

    found: dict[int, dict[str, Any]] = {}
    with db.session() as session:
        campaign = svc.require_campaign(session, name)
        recs = list(
            session.scalars(
                select(CallRecording)
                .where(CallRecording.campaign_id == campaign.id)
                .order_by(CallRecording.started_at)
            )
        )
        for rec in recs:
            problem = None
            if rec.sha256 is None:
                try:
                    rec = register_recording(
                        session,
                        settings,
                        file_of(settings, rec),
                        campaign_id=rec.campaign_id,
                        contact_id=rec.contact_id,
                        agent=rec.agent,
                        started_at=rec.started_at,
                        ended_at=rec.ended_at,
                        source=rec.source,
                        attempt_id=rec.attempt_id,
                        outcome="agent",
                        actor=ACTOR,
                    )
                except RecordingError as exc:
                    problem = str(exc)
            talk = (rec.analytics or {}).get("talk_s") or {}
            info = {
                "id": rec.id,
                "path": _var_relative(settings, file_of(settings, rec)),
                "agent": rec.agent,
                "channels": rec.channels,
                "duration_s": rec.duration_s,
                "talk_s": {"agent": talk.get("agent"), "customer": talk.get("customer")} if talk else None,
                "problem": problem or rec.analytics_error,
            }
            if rec.contact_id is not None:
                found[rec.contact_id] = info
    return found


def table_text(rows: list[dict[str, Any]]) -> str:
    head = f"{'phone':<13} {'callee behaviour':<34} {'outcome':<22} {'attempts':>8}  match"
    lines = [head, "-" * len(head)]
    for r in rows:
        mark_ = "yes" if r["match"] else "NO  (expected " + " or ".join(r["expected"]) + ")"
        lines.append(
            f"{r['phone']:<13} {r['behaviour']:<34} {r['outcome'] or '-':<22} {r['attempts']:>8}  {mark_}"
        )
    bad = sum(1 for r in rows if not r["match"])
    lines.append(f"{len(rows)} contacts, {len(rows) - bad} as expected, {bad} mismatched")
    return "\n".join(lines)


def _secs(x: object) -> str:
    return f"{x:.1f} s" if isinstance(x, int | float) else "-"


def recordings_text(rows: list[dict[str, Any]]) -> str:
    """The agent calls' stereo recordings (left: agent, right: callee), one line each."""
    recs = [(r["phone"], r["recording"]) for r in rows if r.get("recording")]
    if not recs:
        return "no agent-call recordings"
    lines = [f"{len(recs)} agent-call recording(s), stereo (left: agent, right: callee):"]
    for phone, rec in recs:
        talk = rec["talk_s"] or {}
        lines.append(
            f"  {phone:<13} {rec['id']}  {rec['path']}  {_secs(rec['duration_s'])}, "
            f"talk: agent {_secs(talk.get('agent'))}, callee {_secs(talk.get('customer'))}"
            + (f"  ({rec['problem']})" if rec.get("problem") else "")
        )
    return "\n".join(lines)


def run_demo(
    settings: Settings,
    db: Database,
    *,
    per_digit: int = 3,
    out: TextIO | None = sys.stderr,
    with_agent: bool = True,
) -> list[dict[str, Any]]:
    """Start the demo's agent desk (API + one headless softphone), create and run a fresh demo
    campaign, stop the desk; returns the outcome table (with the agent calls' recordings)."""
    from warmline.demo_agent import DemoDesk

    name = "demo-vaccination-" + utcnow().strftime("%Y%m%d-%H%M%S")
    quick = settings.model_copy(update={"dialer_ring_timeout": min(settings.dialer_ring_timeout, 15)})
    with contextlib.ExitStack() as stack:
        agent = False
        if with_agent:
            desk = stack.enter_context(DemoDesk(settings, db, flow=FLOW, out=out))
            agent = desk.ready
        create_demo_campaign(db, name, per_digit)
        spaced = stagger_agent_calls(db, name) if agent else 0
        if out is not None:
            out.write(
                f"campaign {name}: {per_digit * 10} contacts, retry after {RETRY_SECONDS} s, "
                f"at most 2 attempts"
                + (f"; the {spaced} agent calls {AGENT_CALL_SPACING:.0f} s apart" if spaced else "")
                + "\n"
            )
            out.flush()
        limit = 900 + spaced * AGENT_CALL_SPACING
        asyncio.run(run_campaign(quick, db, name, out=out, limit_seconds=limit))
    recordings = campaign_recordings(settings, db, name)
    return outcome_table(db, name, agent=agent, recordings=recordings)
