"""A predictive campaign paced by its pacer against the real lab (slot "pacing" in tests/lab.py).

Four agents are headless softphones (Debian's baresip over TLS + SRTP, auto-answering, silent so
the lab callees' own "wait for silence" steps run as with a quiet agent); after each call the
test plays the agent pressing "ready" after a 2 s wrap-up. The campaign calls 60 lab contacts of
mixed behaviours (the last digit: 6 talks ~10 s, 7 listens 15 s, 1 hangs up after a few seconds,
2 never answers, 3 busy, 4 congestion, 5 answering machine, 8 answers and hangs up at once), with
the earlier part of the day in its ledger (300 live answers, 3 abandoned), as a campaign at noon.

Checked: the abandon rate in the window, from the attempts ledger, stays within the 3% cap; every
abandoned callee heard the apology (its PlaybackStarted on the callee's channel, within 2 s of
AMD's verdict, or the attempt says ARI was slow then; a callee who hangs up during it heard it cut
short). A second campaign whose only "free" agent's phone is gone (not registered) shows
the 2-second rule itself: the callee hears the apology, the attempt is abandoned and retried no
sooner than the campaign says. The figures are printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.models import SipAccount
from agents.routing import set_state
from agents.states import current_state
from core.ari import AriClient
from core.auth.models import Role, User
from core.db import Database, utcnow
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.pacing import abandon_windows
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, AttemptState, Campaign, CampaignStatus, Contact, ContactState
from tests.integration.test_bridge_lab import client, endpoint_online
from tests.lab import lab_ports, private_lab
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from warmline import accounts
from warmline.lab import lab_status
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PW = "correct horse battery"
PORTS = lab_ports("pacing")
AGENTS = ("an", "bo", "chen", "du")
GHOST = "gui"  # an agent marked free whose phone is not there
PATTERN = "6667123458"  # one contact per digit, repeated: 5 in 10 are live answers
CONTACTS = 60
WRAP_S = 2.0
# The agent ends each conversation after TALK_S. Rung, the agents' phones used to do it by
# themselves: baresip ends a call when its source file ends, and the file was 5 s of silence, so
# every call lasted 5 s (the lab's 150 s were sized on that). Kept on the line, an agent's call to
# their phone must outlast the run (a ten-minute file), and the lab callees' own conversations run
# 17-22 s (6: greeting, the wait for the agent, DTMF, a 13 s talk): 60 contacts then take ~160 s of
# calls, not of ARI (measured: every ARI request answered within 0.75 s). The test plays the agent
# ending the call at TALK_S, as a nailed agent does: the callee leaves, the agent stays on the line.
TALK_S = 5.0
RUN_LIMIT_S = 900.0  # a hang detector, not a speed check: the run's wall time is printed with the figures
LIMIT = 0.03
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("pacing-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    upgrade(url)
    with private_lab(var, PORTS, database_url=url, dialer_ring_timeout=10, dialer_tick=0.5) as settings:
        yield settings


@pytest.fixture(scope="module")
def db(lab: Settings) -> Iterator[Database]:
    database = Database(lab.db_url)
    yield database
    database.dispose()


def silence(path: Path) -> Path:
    """Ten minutes of silence: baresip ends a call when its source file ends, and an agent kept on
    the line (nailed up, the default for paced campaigns) holds one call for the whole run."""
    sf.write(path, np.zeros(8000 * 600, dtype=np.int16), 8000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def phones(
    lab: Settings, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[BaresipPhone]]:
    tmp = tmp_path_factory.mktemp("pacing-agents")
    quiet = silence(tmp / "silence.wav")
    st = lab_status(lab)
    endpoints: list[str] = []
    made: list[BaresipPhone] = []
    for name in (*AGENTS, GHOST):
        asyncio.run(accounts.add_user(lab, db, name, Role.agent, PW, actor="test"))
    try:
        for name in AGENTS:
            with db.session() as s:
                account = s.scalar(select(SipAccount).join(User).where(User.name == name))
                assert account is not None
                endpoint, secret = account.endpoint, account.secret
            endpoints.append(endpoint)
            made.append(
                start_baresip(
                    tmp / name, Baresip(endpoint, secret, st.sip_tls_port, st.ca_file), source=quiet
                )
            )

        async def online() -> None:
            async with client(lab) as ari:
                for endpoint in endpoints:
                    assert await endpoint_online(ari, endpoint), f"{endpoint} registered"

        asyncio.run(online())
        yield made
    finally:
        for phone in made:
            phone.stop()


def states(db: Database, names: tuple[str, ...], state: str) -> None:
    with db.session() as s:
        for name in names:
            set_state(s, name, state, "test")


def make_campaign(db: Database, name: str, digits: str, mode: str = "predictive", attempts: int = 1) -> int:
    spec = {
        "name": name,
        "kind": "agent",
        "mode": mode,
        "caller_id": "4001234567",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": attempts,
        "retry": {"abandoned": {"delay": "10m", "growth": 1, "max_attempts": 2}},
        "max_channels": 20,
        "calls_per_second": 5,
        "pacing": {"abandon_limit": LIMIT},
    }
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="test")
        campaign.status = CampaignStatus.running
        for i, d in enumerate(digits):
            s.add(Contact(campaign_id=campaign.id, phone_e164=f"+86139{i:07d}{d}", name=f"客户{i}"))
        s.flush()
        return campaign.id


def seed_history(db: Database, campaign_id: int, live: int, abandoned: int) -> None:
    """The campaign's morning: `live` live answers in the last hours, `abandoned` of them abandoned."""
    now = utcnow()
    with db.session() as s:
        done = Contact(campaign_id=campaign_id, phone_e164="+8613800000000", state=ContactState.done)
        s.add(done)
        s.flush()
        for i in range(live):
            at = now - timedelta(hours=4) + timedelta(seconds=30 * i)
            s.add(
                Attempt(
                    id=str(uuid.uuid4()),
                    campaign_id=campaign_id,
                    contact_id=done.id,
                    attempt_no=i + 1,
                    node="history",
                    state=AttemptState.ended,
                    created_at=at - timedelta(seconds=90),
                    answered_at=at - timedelta(seconds=80),
                    ended_at=at,
                    amd_status="HUMAN",
                    outcome="abandoned" if i < abandoned else "agent",
                )
            )


def run_attempts(db: Database, campaign_id: int) -> list[Attempt]:
    with db.session() as s:
        return list(
            s.scalars(select(Attempt).where(Attempt.campaign_id == campaign_id, Attempt.node != "history"))
        )


def over(db: Database, campaign_id: int) -> bool:
    with db.session() as s:
        waiting = s.scalar(
            select(Contact.id)
            .where(
                Contact.campaign_id == campaign_id,
                Contact.state.in_((ContactState.pending, ContactState.in_progress)),
                Contact.next_due_at.is_(None) | (Contact.next_due_at <= utcnow()),
            )
            .limit(1)
        )
        live = s.scalar(
            select(Attempt.id)
            .where(
                Attempt.campaign_id == campaign_id,
                Attempt.state.in_((AttemptState.created, AttemptState.dialing, AttemptState.answered)),
            )
            .limit(1)
        )
    return waiting is None and live is None


async def ready_after_wrap(db: Database, names: tuple[str, ...]) -> None:
    """Each agent presses "ready" WRAP_S seconds into their wrap-up."""
    while True:
        with db.session() as s:
            for name in names:
                state = current_state(s, name)
                wrapped = state is not None and state.state == "wrap_up"
                if wrapped and state is not None and (utcnow() - state.since).total_seconds() >= WRAP_S:
                    set_state(s, name, "available", "ready")
        await asyncio.sleep(0.2)


@dataclass
class Profile:
    """What the run spent its time on: each ARI request's answer time by kind, the event loop's
    lateness (a blocked loop delays every call), the nailed legs, the ARI back-pressure window."""

    ari: dict[str, list[float]] = field(default_factory=dict)
    loop_late: list[float] = field(default_factory=list)
    nailed: dict[str, int] = field(default_factory=dict)
    nail_ups: int = 0
    pressure: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        slow = sorted(
            ((max(t), kind, len(t), statistics.median(t)) for kind, t in self.ari.items() if t), reverse=True
        )[:6]
        late = sorted(self.loop_late)
        return {
            "ari_slowest": [(k, n, round(med, 3), round(mx, 3)) for mx, k, n, med in slow],
            "ari_requests": sum(len(t) for t in self.ari.values()),
            "loop_late_p99_ms": round(1000 * late[int(0.99 * (len(late) - 1))]) if late else None,
            "loop_late_max_ms": round(1000 * late[-1]) if late else None,
            "nailed_calls": self.nailed,
            "nail_ups": self.nail_ups,
            "pressure": self.pressure,
        }


def ari_kind(method: str, path: str) -> str:
    """``POST /channels/x/snoop`` -> ``POST channels/*/snoop`` (ids out)."""
    parts = path.strip("/").split("/")
    return f"{method} " + "/".join(p if i % 2 == 0 else "*" for i, p in enumerate(parts))


def run_campaign(
    lab: Settings,
    db: Database,
    name: str,
    campaign_id: int,
    agents: tuple[str, ...],
    profile: Profile | None = None,
) -> float:
    profile = profile if profile is not None else Profile()
    request = AriClient.request

    async def timed(self: AriClient, method: str, path: str, **kw: Any) -> Any:
        t0 = time.monotonic()
        try:
            return await request(self, method, path, **kw)
        finally:
            profile.ari.setdefault(ari_kind(method, path), []).append(time.monotonic() - t0)

    async def lateness() -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.05)
            profile.loop_late.append(time.monotonic() - t0 - 0.05)

    async def end_calls(worker: DialerWorker) -> None:
        """Each agent kept on the line ends their conversation TALK_S after it began."""
        began: dict[str, float] = {}
        async with client(lab) as ari:
            while True:
                for link in worker.nodes.values():
                    nailed = link.keeper.nailed if link.keeper is not None else None
                    for leg in (nailed.legs if nailed is not None else {}).values():
                        callee = leg.callee
                        if callee is None:
                            continue
                        if time.monotonic() - began.setdefault(callee, time.monotonic()) >= TALK_S:
                            with contextlib.suppress(Exception):
                                await ari.hangup(callee)
                await asyncio.sleep(0.2)

    async def main() -> float:
        worker = DialerWorker(lab, db, campaigns={name})
        readiness = asyncio.create_task(ready_after_wrap(db, agents))
        late = asyncio.create_task(lateness())
        ending = asyncio.create_task(end_calls(worker))
        started = time.monotonic()
        task = asyncio.create_task(worker.run())
        try:
            while not over(db, campaign_id):
                assert time.monotonic() - started < RUN_LIMIT_S, (
                    "the campaign did not finish in time",
                    profile.figures(),
                )
                assert not task.done(), task
                await asyncio.sleep(0.5)
            return time.monotonic() - started
        finally:
            for link in worker.nodes.values():
                profile.pressure = dict(link.pressure.figures())
                if link.keeper is not None:
                    profile.nailed = {a: leg.calls for a, leg in link.keeper.nailed.legs.items()}
                    profile.nail_ups = len(link.keeper.tried)
            for t in (task, readiness, late, ending):
                t.cancel()
            await asyncio.gather(task, readiness, late, ending, return_exceptions=True)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AriClient, "request", timed)
        return asyncio.run(main())


def the_campaign(db: Database, campaign_id: int) -> Campaign:
    with db.session() as s:
        found = s.get(Campaign, campaign_id)
        assert found is not None
        return found


def test_a_predictive_campaign_stays_within_the_abandon_cap(
    lab: Settings, db: Database, phones: list[BaresipPhone]
) -> None:
    states(db, AGENTS, "available")
    campaign_id = make_campaign(db, "pacing-lab", (PATTERN * 10)[:CONTACTS])
    seed_history(db, campaign_id, live=300, abandoned=3)

    profile = Profile()
    wall = run_campaign(lab, db, "pacing-lab", campaign_id, AGENTS, profile)

    mine = run_attempts(db, campaign_id)
    with db.session() as s:
        [window] = abandon_windows(s, campaign_id, utcnow(), [24 * 3600.0], 0.0)
    live = [a for a in mine if a.amd_status in ("HUMAN", "NOTSURE")]
    abandoned = [a for a in mine if a.outcome == "abandoned"]
    waits = [
        float(a.detail["agent_wait_s"]) for a in live if a.outcome == "agent" and "agent_wait_s" in a.detail
    ]
    pacing = the_campaign(db, campaign_id).pacing_live or {}
    FIGURES.update(
        wall_s=round(wall, 1),
        dials=len(mine),
        live_answers=len(live),
        abandoned=len(abandoned),
        to_agents=sum(a.outcome == "agent" for a in mine),
        window_rate=round(window.share, 4),
        window=(window.live_answers, window.abandoned),
        agent_wait_median_s=round(statistics.median(waits), 3) if waits else None,
        agent_wait_max_s=round(max(waits), 3) if waits else None,
        occupancy=pacing.get("occupancy"),
        agent_wait_between_calls_s=pacing.get("agent_wait_s"),
        last_reason=pacing.get("reason"),
        apology_after_s=[a.detail.get("apology", {}).get("after_s") for a in abandoned],
        **profile.figures(),
    )
    print("\npacing lab:", FIGURES)
    assert len(mine) == CONTACTS, "every contact dialled once"
    assert window.share <= LIMIT, FIGURES
    for a in abandoned:
        apology = a.detail.get("apology") or {}
        assert apology.get("played") is True, (a.id, a.detail)
        # Within 2 s, unless Asterisk itself answered slowly then (a loaded machine): the attempt
        # says so (the fault board shows it too), and the 2 s are a figure, not the product's doing.
        assert apology["after_s"] <= 2.0 or apology.get("ari_slow"), (a.id, apology)
    assert len(live) >= CONTACTS * 0.4, "the lab's people answered"
    assert sum(profile.nailed.values()) >= len(waits) * 0.8, ("agents kept on the line by default", FIGURES)


def test_no_agent_within_the_grace_the_callee_hears_the_apology(
    lab: Settings, db: Database, phones: list[BaresipPhone]
) -> None:
    """Only the ghost is "free": the live answer finds no agent, hears the apology, is abandoned."""
    states(db, AGENTS, "break")
    states(db, (GHOST,), "available")
    campaign_id = make_campaign(db, "pacing-ghost", "6", mode="progressive", attempts=2)

    run_campaign(lab, db, "pacing-ghost", campaign_id, ())

    [attempt] = run_attempts(db, campaign_id)
    apology = attempt.detail.get("apology") or {}
    print(
        "\napology lab:",
        {"outcome": attempt.outcome, "apology": apology, "wait": attempt.detail.get("agent_wait_s")},
    )
    assert attempt.amd_status == "HUMAN" and attempt.outcome == "abandoned", attempt.detail
    assert apology.get("played") is True and apology.get("finished") is True, apology
    assert apology["after_s"] <= 2.0 or apology.get("ari_slow"), apology
    with db.session() as s:
        contact = s.get(Contact, attempt.contact_id)
        assert contact is not None and contact.next_due_at is not None and attempt.ended_at is not None
        assert contact.next_due_at >= attempt.ended_at + timedelta(minutes=10), (
            "retried no sooner than 10 min"
        )
    with contextlib.suppress(Exception):
        states(db, AGENTS, "available")
