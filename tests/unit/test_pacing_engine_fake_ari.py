"""The dialer engine paced by the campaign's pacer, on the fake Asterisk in virtual time (SQLite and
PostgreSQL): it starts what the pacer says and no more, feeds it the agents' states, the calls in
flight and the abandon window read from the attempts ledger; at the abandon cap a predictive
campaign dials one call per free agent; a live answer with no agent within the grace hears the
campaign's apology, is recorded as abandoned (in the budget) and is retried no sooner than the
campaign says; the figures and the pacer's reason are stored on the campaign."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agents.handover.service import PROCESS_QUEUES
from agents.routing import Need
from core.db import Database
from core.messages import CampaignPacing
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.engine import pacing as engine_pacing
from dialer.engine import runtime
from dialer.engine.pacing import PaceTrack, abandon_windows, apology_text, spoken_number
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState, Campaign, CampaignStatus, Contact, ContactState
from dialer.pacing import (
    DialResolved,
    DialResult,
    Observation,
    PacingConfig,
    PacingDecision,
    PacingSnapshot,
    Policy,
    PredictivePacer,
    TalkEnded,
    WrapEnded,
)
from tests.fakes.ari import NO_ANSWER, Callee, FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import SilentPromptCache
from tests.utils import until
from tests.utils.agents import available, endpoint_of, make_agents, record_and_enter_stasis

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # the dialer's clock at the start: Monday 10:00 in Shanghai
NODE = AsteriskNode(name="fake", ari_password="unused: the fake takes any")
CALLER_ID = "4001234567"


@pytest.fixture(autouse=True)
def silent_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "PromptCache", SilentPromptCache)


def settings_for(tmp_path: Path, db: Database) -> Settings:
    return Settings(
        var_dir=tmp_path / "var", database_url=db.url, asterisk_nodes=[NODE], dialer_tick=1.0, _env_file=None
    )


def make_campaign(
    db: Database, mode: str, contacts: int, name: str = "followup", nailed: bool | None = False, **pacing: Any
) -> int:
    spec = {
        "name": name,
        "kind": "agent",
        "mode": mode,
        "caller_id": CALLER_ID,
        "windows": {"daily": ["00:00-24:00"]},
        "retry": {"abandoned": {"delay": "10m", "growth": 1, "max_attempts": 3}},
        "max_channels": 30,
        "calls_per_second": 20,
        "pacing": pacing,
    }
    if nailed is not None:  # None: the default (kept on the line); here rung unless asked
        spec["nailed"] = nailed
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
        for i in range(contacts):
            s.add(Contact(campaign_id=campaign.id, phone_e164=f"+86139{i:08d}", name=f"客户{i}"))
        s.flush()
        return campaign.id


def attempts(db: Database) -> list[Attempt]:
    with db.session() as s:
        return list(s.scalars(select(Attempt).order_by(Attempt.created_at, Attempt.id)))


def the_campaign(db: Database) -> Campaign:
    with db.session() as s:
        found: Campaign | None = s.scalar(select(Campaign))
        assert found is not None
        return found


def set_states(db: Database, **states: str) -> None:
    from agents.routing import set_state
    from core.db import utcnow

    with db.session() as s:
        for agent, state in states.items():
            set_state(s, agent, state, "test", since=utcnow() - timedelta(seconds=30))


def seed_ledger(db: Database, campaign_id: int, live: int, abandoned: int) -> None:
    """`live` live answers ended in the last hour on the dialer's clock, `abandoned` of them abandoned."""
    with db.session() as s:
        done = Contact(campaign_id=campaign_id, phone_e164="+8613800000000", state=ContactState.done)
        s.add(done)
        s.flush()
        for i in range(live):
            at = T0 - timedelta(minutes=50) + timedelta(seconds=10 * i)
            s.add(
                Attempt(
                    id=str(uuid.uuid4()),
                    campaign_id=campaign_id,
                    contact_id=done.id,
                    attempt_no=i + 1,
                    node="fake",
                    state=AttemptState.ended,
                    created_at=at - timedelta(seconds=60),
                    answered_at=at - timedelta(seconds=50),
                    ended_at=at,
                    amd_status="HUMAN",
                    outcome="abandoned" if i < abandoned else "agent",
                )
            )


def trained() -> PredictivePacer:
    """A predictive pacer that has seen a campaign's first hour: 400 dials, 30% live after 4-14 s,
    talks of ~3 minutes and wrap-ups of ~30 s (as tests/unit/test_pacing_policies.py trains it)."""
    rng = random.Random(5)
    seen: list[Observation] = []
    for _ in range(400):
        if rng.random() < 0.30:
            seen.append(DialResolved(rng.uniform(4.0, 14.0), DialResult.live))
        else:
            seen.append(DialResolved(rng.choice([3.0, 30.0, 30.0]), DialResult.no_answer))
    seen += [TalkEnded(rng.lognormvariate(4.9, 0.8)) for _ in range(100)]
    seen += [WrapEnded(rng.uniform(25.0, 35.0), ready_again=True) for _ in range(100)]
    pacer = PredictivePacer(PacingConfig(windows_s=(86_400.0,)))
    pacer.observe(PacingSnapshot(now=0.0, agents_free=0, observations=tuple(seen)))
    return pacer


class BusRecorder:
    """Stands in for core.bus.Bus: keeps what is published."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def publish(self, message: Any) -> None:
        self.messages.append(message)


class StubPacer:
    """Says `plan[i]` on pass i (then 0), and keeps every snapshot it was shown."""

    policy = Policy.predictive

    def __init__(self, plan: list[int]) -> None:
        self.plan = list(plan)
        self.seen: list[PacingSnapshot] = []

    def decide(self, s: PacingSnapshot) -> PacingDecision:
        self.seen.append(s)
        n = self.plan.pop(0) if self.plan else 0
        return PacingDecision(
            n, "predicting", {"calls": n, "free": s.agents_free, "soon": 0, "answer_rate": 0.3}
        )


def run_worker(
    settings: Settings,
    db: Database,
    asterisk: FakeAsterisk,
    done: Callable[[], bool],
    *,
    within: float = 120.0,
    then: float = 0.0,
    bus: Any = None,
) -> DialerWorker:
    """Run the worker on virtual time until `done()`, then `then` seconds more."""
    box: dict[str, DialerWorker] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        worker = DialerWorker(
            settings,
            db,
            now=lambda: T0 + timedelta(seconds=loop.time() - started),
            monotonic=loop.time,
            ari_factory=lambda *_: asterisk.client(),
            bus=bus,
        )
        box["worker"] = worker
        task = asyncio.create_task(worker.run())
        try:
            await until(done, within, interval=0.25, what="the scenario")
            if then:
                await asyncio.sleep(then)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    run_virtual(main())
    return box["worker"]


# ------------------------------------------------------------------ the pacer decides


def test_the_engine_starts_what_the_pacer_says_and_feeds_it_agents_and_calls(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_agents(db, {"lin": [], "mei": [], "wu": [], "zhao": []})
    available(db, "lin", "mei", "wu")
    set_states(db, zhao="break")
    make_campaign(db, "predictive", contacts=20)
    stub = StubPacer([2, 0, 3])
    monkeypatch.setattr(engine_pacing, "new_pacer", lambda spec: stub)
    settings_version = the_campaign(db).updated_at
    asterisk = FakeAsterisk(default=lambda endpoint: NO_ANSWER)  # every call rings out (30 s)
    settings = settings_for(tmp_path, db)

    bus = BusRecorder()
    run_worker(settings, db, asterisk, lambda: len(stub.seen) >= 6, then=0.5, bus=bus)

    assert len(asterisk.calls("originate")) == 5, "2 on the first pass, none on the second, 3 on the third"
    assert len(attempts(db)) == 5
    first = stub.seen[0]
    assert (first.agents_free, len(first.agents_busy), first.agents_paused) == (3, 0, 1)
    assert first.calls_ringing == () and first.abandon[0].window_s == 86_400.0
    assert len(stub.seen[1].calls_ringing) == 2, "the calls it started are ringing at the next pass"
    assert len(stub.seen[3].calls_ringing) == 5
    live = the_campaign(db).pacing_live
    assert live is not None and live["mode"] == "predictive" and live["reason"] == "predicting"
    assert live["agents_free"] == 3 and live["agents_paused"] == 1 and live["ringing"] == 5
    assert the_campaign(db).updated_at == settings_version, "figures are not a settings change"
    pacing = [m for m in bus.messages if isinstance(m, CampaignPacing)]
    assert pacing and pacing[0].topic() == "warmline/campaigns/followup/pacing"
    assert pacing[0].calls == 2 and pacing[0].reason_text.startswith("预测式："), "zh-CN by default"


def test_a_call_answered_while_amd_analyses_it_is_marked_for_the_pacer(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine knows a callee answered before AMD's verdict: each ringing call is marked with
    the seconds since its answer (None while it still rings), and its resolution says when it was
    answered, so the pacer learns P(a person | answered, no verdict yet)."""
    make_agents(db, {"lin": []})
    available(db, "lin")
    make_campaign(db, "predictive", contacts=5)
    stub = StubPacer([2])
    monkeypatch.setattr(engine_pacing, "new_pacer", lambda spec: stub)
    machine = Callee(answer_after=1.5, amd="MACHINE", amd_seconds=4.0)
    asterisk = FakeAsterisk(default=lambda endpoint: machine)

    def resolved() -> list[DialResolved]:
        return [o for s in stub.seen for o in s.observations if isinstance(o, DialResolved)]

    run_worker(settings_for(tmp_path, db), db, asterisk, lambda: len(resolved()) >= 2)

    ringing = [s for s in stub.seen if s.calls_ringing]
    assert ringing and all(len(s.calls_answered) == len(s.calls_ringing) for s in ringing)
    assert ringing[0].calls_answered == (None, None), "still ringing at the next pass"
    analysing = [s for s in ringing if all(b is not None for b in s.calls_answered)]
    assert len(analysing) >= 2, "answered after 1.5 s, AMD's verdict 4 s later: several passes"
    since = [b for s in analysing for b in s.calls_answered if b is not None]
    assert min(since) >= 0.0 and max(since) <= 4.5
    assert [o.result for o in resolved()] == [DialResult.machine, DialResult.machine]
    for o in resolved():
        assert o.answered_after_s is not None and o.answered_after_s == pytest.approx(1.5, abs=0.5)
        assert o.after_s - o.answered_after_s == pytest.approx(4.0, abs=0.5)


def test_inbound_callers_waiting_for_the_same_agents_are_in_the_snapshot(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_agents(db, {"lin": ["welfare"]})
    available(db, "lin")
    make_campaign(db, "progressive", contacts=3)
    stub = StubPacer([0])
    monkeypatch.setattr(engine_pacing, "new_pacer", lambda spec: stub)
    PROCESS_QUEUES.join("welfare", "inbound-caller", 0, Need("welfare", ("12345",)))
    try:
        run_worker(settings_for(tmp_path, db), db, FakeAsterisk(), lambda: len(stub.seen) >= 2)
    finally:
        PROCESS_QUEUES.leave("welfare", "inbound-caller")
    assert stub.seen[0].inbound_waiting == 1


def test_a_blended_agent_is_kept_for_an_inbound_caller_waiting_for_their_skill(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pacer is told to dial anyway: the live answer does not get lin, whom an inbound caller
    for her skill is waiting for; it hears the apology instead."""
    make_agents(db, {"lin": ["welfare"]})
    available(db, "lin")
    make_campaign(db, "predictive", contacts=1)
    monkeypatch.setattr(engine_pacing, "new_pacer", lambda spec: StubPacer([1]))
    settings = settings_for(tmp_path, db)
    asterisk = FakeAsterisk(default=lambda endpoint: Callee(answer_after=1.0))
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    asterisk.callee(endpoint_of(db, "lin"), Callee(answer_after=0.2))
    PROCESS_QUEUES.join("welfare", "inbound-caller", 0, Need("welfare", ("12345",)))
    try:
        run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)
    finally:
        PROCESS_QUEUES.leave("welfare", "inbound-caller")
    [attempt] = attempts(db)
    assert attempt.outcome == "abandoned" and attempt.agent is None
    assert attempt.detail["apology"]["played"] is True
    rung = [r for r in asterisk.calls("originate") if r.params.get("endpoint") == endpoint_of(db, "lin")]
    assert len(asterisk.calls("originate")) == 1 and rung == [], (
        "only the callee was dialled: lin was never rung"
    )


def test_a_progressive_campaign_never_has_more_calls_than_free_agents(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"lin": [], "mei": []})
    available(db, "lin", "mei")
    make_campaign(db, "progressive", contacts=10)
    asterisk = FakeAsterisk(default=lambda endpoint: NO_ANSWER)
    settings = settings_for(tmp_path, db)
    seen: list[int] = []

    def watch() -> bool:
        seen.append(len(asterisk.calls("originate")))
        return len(seen) > 40

    run_worker(settings, db, asterisk, watch)
    assert max(seen) == 2, "one call per free agent, and none while both calls ring"
    assert the_campaign(db).pacing_live["reason"] == "agents_busy"  # type: ignore[index]


def test_two_paced_campaigns_never_dial_for_the_same_free_agents(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"lin": [], "mei": []})
    available(db, "lin", "mei")
    make_campaign(db, "progressive", contacts=5, name="first")
    make_campaign(db, "progressive", contacts=5, name="second")
    asterisk = FakeAsterisk(default=lambda endpoint: NO_ANSWER)
    passes: list[int] = []

    def watch() -> bool:
        passes.append(len(asterisk.calls("originate")))
        return len(passes) > 30

    run_worker(settings_for(tmp_path, db), db, asterisk, watch)
    assert max(passes) == 2, "two free agents: two calls in all, whichever campaign placed them"


@pytest.mark.parametrize(("abandoned", "more_than_progressive"), [(0, True), (6, False)])
def test_at_the_abandon_cap_a_predictive_campaign_dials_one_call_per_free_agent(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch, abandoned: int, more_than_progressive: bool
) -> None:
    """Five free agents: the trained pacer dials ahead while the ledger's window has room, and
    only five calls -- one per free agent -- with 6 abandoned of 200 (3%, the limit)."""
    agents = ["lin", "mei", "wu", "zhao", "qian"]
    make_agents(db, {a: [] for a in agents})
    available(db, *agents)
    campaign_id = make_campaign(db, "predictive", contacts=30)
    seed_ledger(db, campaign_id, live=200, abandoned=abandoned)
    monkeypatch.setattr(engine_pacing, "new_pacer", lambda spec: trained())
    asterisk = FakeAsterisk(default=lambda endpoint: NO_ANSWER)
    settings = settings_for(tmp_path, db)

    run_worker(settings, db, asterisk, lambda: len(asterisk.calls("originate")) >= 5, then=5.0)

    started = len(asterisk.calls("originate"))
    live = the_campaign(db).pacing_live
    assert live is not None and live["live_answers"] == 200 and live["abandoned"] == abandoned
    if more_than_progressive:
        assert started > 5, live
    else:
        assert started == 5, live
        assert live["reason"] in ("abandon_cap", "holding_back") and live["abandon_rate"] == 0.03
        assert live["params"] == {"rate": 0.03, "limit": 0.03}


def test_the_abandon_window_counts_live_answers_from_the_ledger(db: Database) -> None:
    with db.session() as s:
        spec = svc.build_spec({"name": "w", "kind": "agent", "mode": "predictive"})
        campaign_id = svc.create_campaign(s, spec, actor="t").id
    seed_ledger(db, campaign_id, live=30, abandoned=2)  # ended 50 .. 45 minutes before T0
    with db.session() as s:
        [day] = abandon_windows(s, campaign_id, T0, [86_400.0], 120.0)
        [short] = abandon_windows(s, campaign_id, T0, [47 * 60.0], 120.0)
    assert (day.live_answers, day.abandoned, day.kept) == (30, 2, 30)
    assert short.live_answers < 30 and short.kept < short.live_answers, "answers leaving the window soon"


# ------------------------------------------------------------------ the 2-second rule


def test_a_live_answer_with_no_agent_within_the_grace_hears_the_apology_and_is_abandoned(
    tmp_path: Path, db: Database
) -> None:
    """lin is free when the call starts, but her phone does not answer: at the grace (1.2 s after
    AMD's verdict, her ring included) the call is given up on, the callee hears the apology with the
    number to call back, the attempt is abandoned (in the abandon window) and the contact is due
    again no sooner than 10 minutes. lin stays available: the unanswered ring was cut short."""
    make_agents(db, {"lin": []})
    available(db, "lin")
    make_campaign(db, "progressive", contacts=1)
    settings = settings_for(tmp_path, db)
    asterisk = FakeAsterisk(default=lambda endpoint: Callee(answer_after=2.0, amd_seconds=1.5))
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    asterisk.callee(endpoint_of(db, "lin"), Callee(answer_after=None))

    run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)

    [attempt] = attempts(db)
    assert attempt.outcome == "abandoned" and attempt.amd_status == "HUMAN"
    apology = attempt.detail["apology"]
    assert apology["played"] is True and apology["after_s"] <= 2.0, apology
    # On Asterisk's clock: the verdict's StasisStart to the channel's PlaybackStarted.
    assert apology["heard_after_s"] == pytest.approx(apology["after_s"], abs=0.05), apology
    assert "cut_short" not in apology and "ari_slow" not in apology
    plays = asterisk.calls("play", attempt.id)
    assert len(plays) == 1, "the apology, once"
    assert attempt.detail["agent_wait_s"] == pytest.approx(1.2, abs=0.15)
    with db.session() as s:
        contact = s.scalar(select(Contact).where(Contact.id == attempt.contact_id))
        assert contact is not None and contact.state is ContactState.pending
        assert contact.next_due_at is not None and attempt.ended_at is not None
        assert contact.next_due_at >= attempt.ended_at + timedelta(minutes=10), "not retried sooner"
        [window] = abandon_windows(s, attempt.campaign_id, attempt.ended_at, [86_400.0], 0.0)
    assert (window.live_answers, window.abandoned) == (1, 1)


def test_a_callee_who_hangs_up_during_the_apology_heard_it_cut_short(tmp_path: Path, db: Database) -> None:
    """Asterisk ends a playback cut by the hang-up as "failed": the callee heard the apology (it
    started), and the attempt says it was cut short, not that it could not be played."""
    make_campaign(db, "progressive", contacts=1)
    settings = settings_for(tmp_path, db)
    make_agents(db, {"lin": []})
    available(db, "lin")
    asterisk = FakeAsterisk(
        default=lambda endpoint: Callee(
            answer_after=2.0, amd_seconds=1.5, hangup_on="prompt", hangup_prompt=1, hangup_after=0.5
        )
    )
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    asterisk.callee(endpoint_of(db, "lin"), Callee(answer_after=None))

    run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)

    [attempt] = attempts(db)
    assert attempt.outcome == "abandoned", attempt.detail
    assert attempt.detail["apology"] == {
        "played": True,
        "after_s": pytest.approx(1.2, abs=0.2),
        "heard_after_s": pytest.approx(1.2, abs=0.2),
        "cut_short": True,
        "finished": True,
    }


def test_a_live_answer_an_agent_takes_at_once_hears_no_apology(tmp_path: Path, db: Database) -> None:
    make_agents(db, {"lin": []})
    available(db, "lin")
    make_campaign(db, "progressive", contacts=1)
    settings = settings_for(tmp_path, db)
    asterisk = FakeAsterisk(
        default=lambda endpoint: Callee(answer_after=2.0, hangup_on="answer", hangup_after=20)
    )
    asterisk.dialplan["warmline-record"] = record_and_enter_stasis(settings, asterisk)
    asterisk.callee(endpoint_of(db, "lin"), Callee(answer_after=0.3))

    run_worker(settings, db, asterisk, lambda: bool(attempts(db)) and attempts(db)[0].outcome is not None)

    [attempt] = attempts(db)
    assert attempt.outcome == "agent" and attempt.agent == "lin"
    assert "apology" not in attempt.detail and attempt.detail["agent_wait_s"] < 1.2 + 1.5
    assert asterisk.calls("play", attempt.id) == []


def test_the_apology_says_the_caller_id_digit_by_digit() -> None:
    spec = svc.build_spec({"name": "a", "kind": "agent", "mode": "predictive", "caller_id": "010-6512 3456"})
    assert spoken_number("4001234567") == "四零零幺二三四五六七"
    text = apology_text(spec)
    assert "零幺零六五幺二三四五六" in text and "{callback}" not in text
    custom = svc.build_spec(
        {"name": "b", "kind": "agent", "mode": "progressive", "pacing": {"apology": "请回拨{callback}。"}}
    )
    assert apology_text(custom) == "请回拨。"
    with pytest.raises(svc.SpecError if hasattr(svc, "SpecError") else ValueError):
        svc.build_spec({"name": "c", "kind": "agent", "mode": "predictive", "pacing": {"abandon_limit": 0.5}})


def test_pacing_settings_survive_the_campaign_table(db: Database) -> None:
    with db.session() as s:
        spec = svc.build_spec(
            {
                "name": "p",
                "kind": "agent",
                "mode": "predictive",
                "pacing": {"abandon_limit": 0.02, "window_hours": 720},
            }
        )
        campaign = svc.create_campaign(s, spec, actor="t")
        s.flush()
        again = svc.spec_of(campaign)
    assert again.pacing.abandon_limit == 0.02 and again.pacing.window_hours == 720
    track = PaceTrack(again, again.mode)
    assert track.config.windows_s == (720 * 3600.0,) and track.config.abandon_limit == 0.02
