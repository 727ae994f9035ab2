"""Agents kept on the line against the real lab (slot "nailed" in tests/lab.py).

Two agents are headless softphones (Debian's baresip over TLS + SRTP, auto-answering, each
sending a faint tone of its own: silence to the lab callees), as in
tests/integration/test_pacing_lab.py. With ``dialer_nailed_agents`` on, the dialer calls each free
agent once and keeps their leg in a holding bridge; a progressive campaign calls 10 lab contacts
who all answer (6 talks ~10 s, 7 listens 15 s, 1 hangs up after a few seconds) and every live
answer is put into a nailed agent's bridge with no ring. After each call the test plays the
agent pressing "ready" after a 1 s wrap-up.

Each nailed call's recording is checked as a rung call's is (tests/integration/test_bridge_lab.py):
one stereo file per live answer, registered with the agent, campaign and attempt, the agent's tone
(each phone sends its own) on the left, the callee on the right; made by MixMonitor on the callee's
channel, started over AMI (the lab's manager.conf, the slot's AMI port), the agent's voice placed
within 0.25 s of when the callee first heard it (0.1 s in the typical call).

Measured: AMD's live verdict to the callee in the agent's bridge (the attempt's ``agent_wait_s``:
from the dialer's hand-over, started at the verdict, to the answer of the ``add_channel``
request), median and max; the target is 300 ms. Checked: each agent's phone was called once for
the whole campaign, every live answer went to a nailed agent.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.handover.nailed import NailedAgents
from agents.handover.nailed_recording import MixMonitorRecording, SnoopRecording
from agents.models import SipAccount
from agents.routing import set_state
from agents.states import current_state
from agents.transfer.models import Transfer
from agents.transfer.service import TransferAsk, request_step, request_transfer
from core.ari import AriClient, AriError
from core.ari_events import EventDispatcher, event_time
from core.auth.models import Role, User
from core.bus import Bus
from core.db import Database, utcnow
from core.messages import CallEvent
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.runtime import DialerWorker
from dialer.models import Attempt, CampaignStatus, Contact
from recordings import capture
from recordings.models import CallRecording
from recordings.service import open_recording
from tests.integration.test_bridge_lab import band_energy, client, endpoint_online, rms_dbfs
from tests.integration.test_pacing_lab import over
from tests.lab import lab_ports, private_lab
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from tests.utils.faulty_proxy import FaultyProxy
from warmline import accounts
from warmline.lab import lab_status
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PW = "correct horse battery"
PORTS = lab_ports("nailed")
AGENTS = {"an": 700, "bo": 1000}  # each agent's phone sends a tone of its own (Hz)
DIGITS = "6716716761"  # every contact answers: 6 talks ~10 s, 7 listens 15 s, 1 hangs up early
WRAP_S = 1.0
RUN_LIMIT_S = 900.0  # a hang detector, not a speed check: the run's wall time is printed with the figures
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("nailed-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    upgrade(url)
    with private_lab(
        var, PORTS, database_url=url, dialer_ring_timeout=10, dialer_tick=0.2, dialer_nailed_agents=True
    ) as settings:
        yield settings


@pytest.fixture(scope="module")
def db(lab: Settings) -> Iterator[Database]:
    database = Database(lab.db_url)
    yield database
    database.dispose()


def faint_tone(path: Path, hz: int) -> Path:
    """Ten minutes of the agent's own tone (baresip ends a call when its source file ends) at
    -46 dBFS: under Asterisk's silence threshold (mean level 256), so the lab callees' "wait for
    silence" steps run as with a quiet agent, and still plain in a recording's band energy."""
    t = np.arange(8000 * 600) / 8000
    sf.write(path, (160 * np.sin(2 * np.pi * hz * t)).astype(np.int16), 8000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def phones(
    lab: Settings, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[BaresipPhone]]:
    tmp = tmp_path_factory.mktemp("nailed-agents")
    st = lab_status(lab)
    endpoints: list[str] = []
    made: list[BaresipPhone] = []
    for name in AGENTS:
        asyncio.run(accounts.add_user(lab, db, name, Role.agent, PW, actor="test"))
    try:
        for name in AGENTS:
            with db.session() as s:
                account = s.scalar(select(SipAccount).join(User).where(User.name == name))
                assert account is not None
                endpoint, secret = account.endpoint, account.secret
            endpoints.append(endpoint)
            source = faint_tone(tmp / f"{name}-tone.wav", AGENTS[name])
            sip = Baresip(endpoint, secret, st.sip_tls_port, st.ca_file)
            made.append(start_baresip(tmp / name, sip, source=source))

        async def online() -> None:
            async with client(lab) as ari:
                for endpoint in endpoints:
                    assert await endpoint_online(ari, endpoint), f"{endpoint} registered"

        asyncio.run(online())
        yield made
    finally:
        for phone in made:
            phone.stop()


def make_campaign(db: Database) -> int:
    spec = {
        "name": "nailed-lab",
        "kind": "agent",
        "mode": "progressive",
        "caller_id": "4001234567",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "max_channels": 10,
        "calls_per_second": 5,
    }
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="test")
        campaign.status = CampaignStatus.running
        for i, d in enumerate(DIGITS):
            s.add(Contact(campaign_id=campaign.id, phone_e164=f"+86139{i:07d}{d}", name=f"客户{i}"))
        s.flush()
        return campaign.id


async def ready_after_wrap(db: Database) -> None:
    while True:
        with db.session() as s:
            for name in AGENTS:
                state = current_state(s, name)
                wrapped = state is not None and state.state == "wrap_up"
                if wrapped and state is not None and (utcnow() - state.since).total_seconds() >= WRAP_S:
                    set_state(s, name, "available", "ready")
        await asyncio.sleep(0.2)


def test_live_answers_go_to_nailed_agents_with_no_ring(
    lab: Settings, db: Database, phones: list[BaresipPhone], monkeypatch: pytest.MonkeyPatch
) -> None:
    sides: list[tuple[int, int]] = []  # (agent's, callee's) frames of each call, as ARI wrote them
    timings: dict[str, capture.SideTiming | None] = {}  # recording id -> where its sides were put
    merge = capture.merge_stereo

    def measured_merge(
        agent: Path,
        customer: Path,
        out: Path,
        *,
        align_end: bool = False,
        timing: capture.SideTiming | None = None,
    ) -> float:
        sides.append((sf.info(agent).frames, sf.info(customer).frames if customer.exists() else 0))
        timings[out.stem] = timing
        return merge(agent, customer, out, align_end=align_end, timing=timing)

    monkeypatch.setattr(capture, "merge_stereo", measured_merge)
    # When the agent's voice can first reach the callee: their leg plays the beep (TONE_SECONDS)
    # from the moment the callee is announced, and a playing channel sends nothing to the bridge.
    # And where each call's span starts (the callee entering the bridge, Asterisk's clock).
    beeps: list[tuple[str, datetime]] = []  # (agent's leg, the beep's PlaybackFinished: Asterisk's clock)
    entered: dict[str, datetime] = {}  # attempt -> the callee in the agent's bridge
    dispatch = EventDispatcher.dispatch
    stops: dict[type, Callable[..., Awaitable[str | None]]] = {
        MixMonitorRecording: MixMonitorRecording.stop,
        SnoopRecording: SnoopRecording.stop,
    }

    def watched(self: EventDispatcher, event: dict[str, Any]) -> int:
        playback = event.get("playback") or {}
        if event.get("type") == "PlaybackFinished" and str(playback.get("id", "")).startswith("nailed-tone-"):
            when = event_time(event)
            if when is not None:
                beeps.append((str(playback.get("target_uri", "")).removeprefix("channel:"), when))
        return dispatch(self, event)

    def timed(kind: type[MixMonitorRecording] | type[SnoopRecording]) -> Callable[..., Any]:
        async def timed_stop(
            self: MixMonitorRecording | SnoopRecording, **span: datetime | None
        ) -> str | None:
            if span.get("entered") is not None and self.facts.attempt_id:
                entered[self.facts.attempt_id] = span["entered"]  # type: ignore[assignment]
            return await stops[kind](self, **span)

        return timed_stop

    monkeypatch.setattr(EventDispatcher, "dispatch", watched)
    for kind in stops:
        monkeypatch.setattr(kind, "stop", timed(kind))
    with db.session() as s:
        for name in AGENTS:
            set_state(s, name, "available", "test")
    campaign_id = make_campaign(db)
    nailed_calls: dict[str, int] = {}
    legs: dict[str, str] = {}  # agent -> their nailed leg
    nail_ups: list[int] = []
    seen: list[tuple[float, CallEvent]] = []  # (arrival, event): AMD's verdicts and screen pops

    async def listen(bus: Bus) -> None:
        async with bus.subscribe("calls/+", CallEvent) as events:
            async for _, event in events:
                if event.kind in ("amd", "screen_pop"):
                    seen.append((time.monotonic(), event))

    async def main() -> float:
        prefix = f"test-nailed-{uuid.uuid4().hex[:8]}"
        async with (
            Bus(lab.mqtt_host, lab.mqtt_port, prefix=prefix, component="dialer") as bus,
            Bus(lab.mqtt_host, lab.mqtt_port, prefix=prefix) as watcher,
        ):
            heard = asyncio.create_task(listen(watcher))
            try:
                return await run(bus)
            finally:
                heard.cancel()
                await asyncio.gather(heard, return_exceptions=True)

    async def run(bus: Bus) -> float:
        worker = DialerWorker(lab, db, campaigns={"nailed-lab"}, bus=bus)
        readiness = asyncio.create_task(ready_after_wrap(db))
        started = time.monotonic()
        task = asyncio.create_task(worker.run())
        try:
            while not over(db, campaign_id):
                assert time.monotonic() - started < RUN_LIMIT_S, (
                    "the campaign did not finish in time",
                    where(db),
                )
                assert not task.done(), task
                await asyncio.sleep(0.5)
            wall = time.monotonic() - started
            [link] = worker.nodes.values()
            assert link.keeper is not None
            nailed_calls.update({a: leg.calls for a, leg in link.keeper.nailed.legs.items()})
            legs.update({a: leg.leg for a, leg in link.keeper.nailed.legs.items()})
            nail_ups.append(len(link.keeper.tried))
            return wall
        finally:
            for t in (task, readiness):
                t.cancel()
            await asyncio.gather(task, readiness, return_exceptions=True)

    wall = asyncio.run(main())

    with db.session() as s:
        mine = list(s.scalars(select(Attempt).where(Attempt.campaign_id == campaign_id)))
    live = [a for a in mine if a.amd_status in ("HUMAN", "NOTSURE")]
    verdicts = {e.call_id: t for t, e in seen if e.kind == "amd"}
    pops = {e.call_id: (t, e) for t, e in seen if e.kind == "screen_pop"}
    pop_after = sorted(pops[a][0] - verdicts[a] for a in verdicts if a in pops)
    waits = sorted(float(a.detail["agent_wait_s"]) for a in live if "agent_wait_s" in a.detail)
    FIGURES.update(
        wall_s=round(wall, 1),
        dials=len(mine),
        live_answers=len(live),
        to_agents=sum(a.outcome == "agent" for a in mine),
        bridged_by_nailed_leg=nailed_calls,
        verdict_to_bridge_median_ms=round(1000 * statistics.median(waits)) if waits else None,
        verdict_to_bridge_max_ms=round(1000 * max(waits)) if waits else None,
        verdict_to_bridge_all_ms=[round(1000 * w) for w in waits],
        screen_pops=len(pops),
        verdict_to_pop_on_bus_median_ms=round(1000 * statistics.median(pop_after)) if pop_after else None,
        verdict_to_pop_on_bus_max_ms=round(1000 * max(pop_after)) if pop_after else None,
        recorded_via={
            v: sum(a.detail.get("recording_via") == v for a in live) for v in ("mixmonitor", "snoop")
        },
        mixmonitor_start_in_span_ms=sorted(
            round(1000 * t.agent_start_s) for t in timings.values() if t is not None
        ),
    )
    print("\nnailed lab:", FIGURES)
    assert len(mine) == len(DIGITS), "every contact dialled once"
    assert len(live) >= 8, FIGURES
    assert all(a.outcome == "agent" for a in live), FIGURES
    assert sorted(nailed_calls) == sorted(AGENTS), "both agents still nailed up at the end"
    assert sum(nailed_calls.values()) == len(live), "every live answer went into a nailed bridge"
    assert len(pops) == len(live), "a screen pop on the bus for every live answer"
    assert all(pops[a.id][1].detail["agent"] == a.agent for a in live), "to the agent who took it"
    assert all("13900" not in str(e.detail) for _, e in pops.values()), "the masked number only"
    # Speed (verdict to bridge, 300 ms) is the bench's (tests/bench/test_pacing_lab_bench.py), as
    # figures printed here; what the suite asserts is that every live answer reached an agent above.
    moments: dict[str, tuple[datetime, datetime]] = {}  # attempt -> (bridged, the agent's beep over)
    for a in live:
        bridged = entered.get(a.id)
        after = sorted(t for leg, t in beeps if leg == legs.get(str(a.agent)) and bridged and t >= bridged)
        if bridged is not None and after:
            moments[a.id] = (bridged, after[0])
    recorded_via = [str(a.detail.get("recording_via")) for a in live]
    check_recordings(lab, db, live, sides, timings, moments, recorded_via)


def where(db: Database) -> dict[str, int]:
    """How the attempts stand (state/outcome: count), for a run that did not finish."""
    with db.session() as s:
        found = [f"{a.state}/{a.outcome}" for a in s.scalars(select(Attempt))]
    return {k: found.count(k) for k in sorted(set(found))}


def check_recordings(
    lab: Settings,
    db: Database,
    live: list[Attempt],
    sides: list[tuple[int, int]],
    timings: dict[str, capture.SideTiming | None],
    moments: dict[str, tuple[datetime, datetime]],
    recorded_via: list[str],
) -> None:
    """Every nailed call is recorded as a rung one: one stereo file, the agent (their tone) on the
    left, the callee on the right, registered with the call's facts. The two sides are aligned in
    the call's bridged span (the callee entering the agent's bridge to their hang-up, from ARI's
    events): the file is that span, and the agent's tone (sent all the time) starts where the
    callee first heard it (the beep's end) and runs to the call's end, on the same clock as the
    callee's."""
    shares: list[tuple[float, float]] = []
    talker_dbfs: list[float] = []
    misplaced_ms: list[int] = []  # the agent's tone onset in the file against the beep's end
    short_ms: list[int] = []  # the span's end against the end of the agent's tone
    span_vs_file_ms: list[int] = []
    checksums: list[str] = []  # calls may sound the same to the sample: each keeps its own row
    with db.session() as s:
        for attempt in live:
            row = s.scalar(select(CallRecording).where(CallRecording.attempt_id == attempt.id))
            assert row is not None, f"attempt {attempt.id} recorded"
            assert (row.agent, row.campaign_id, row.channels) == (attempt.agent, attempt.campaign_id, 2)
            assert row.source == "agent-bridge" and row.status.value == "ok" and row.encrypted
            assert row.id == attempt.detail.get("recording"), "the attempt names its own recording"
            checksums.append(str(row.sha256))
            with open_recording(lab, row) as f:
                audio, rate = sf.read(f, dtype="int16")
            assert rate == 8000 and audio.ndim == 2
            left, right = audio[:, 0], audio[:, 1]
            hz = AGENTS[str(row.agent)]
            shares.append((band_energy(left, hz), band_energy(right, hz)))
            timing = timings.get(row.id)
            assert timing is not None and timing.span_s is not None, f"{row.id} placed in its span"
            span_vs_file_ms.append(round(1000 * (audio.shape[0] / rate - timing.span_s)))
            heard = np.flatnonzero(np.abs(left) > 40)  # the tone's amplitude is 160
            if attempt.id in moments:
                bridged, beep_over = moments[attempt.id]
                expected = (beep_over - bridged).total_seconds()  # the agent reaches the callee from then
                misplaced_ms.append(round(1000 * (heard[0] / rate - expected)))
            short_ms.append(round(1000 * (audio.shape[0] - 1 - heard[-1]) / rate))
            contact = s.get(Contact, attempt.contact_id)
            if contact is not None and contact.phone_e164.endswith("6"):
                talker_dbfs.append(rms_dbfs(right))
    offsets = sorted(round(1000 * (a - c) / 8000) for a, c in sides)  # > 0: the callee's side shorter
    FIGURES.update(
        recordings=len(shares),
        same_audio_as_another_call=len(checksums) - len(set(checksums)),
        left_tone_share_min=round(min(share[0] for share in shares), 3),
        right_tone_share_max=round(max(share[1] for share in shares), 3),
        talking_callee_right_dbfs=[round(d, 1) for d in talker_dbfs],
        agent_side_longer_by_ms=offsets,
        file_minus_span_ms=span_vs_file_ms,
        agent_onset_minus_beep_end_ms=sorted(misplaced_ms),
        agent_tone_ends_before_call_end_ms=sorted(short_ms),
    )
    print("nailed lab recordings:", FIGURES)
    assert all(left > 0.8 for left, _ in shares), "the agent's tone fills the left channel"
    assert all(right < 0.02 for _, right in shares), "the callee's channel does not carry the agent"
    assert talker_dbfs and all(d > -45 for d in talker_dbfs), "a talking callee is on the right"
    assert all(abs(ms) <= 20 for ms in span_vs_file_ms), "the file is the call's bridged span"
    assert len(misplaced_ms) == len(shares), "every call's span and beep seen"
    # Recorded by MixMonitor on the callee's channel (over AMI): both files are what passed through
    # that channel, kept in step by Asterisk, so the recording is what the callee heard when they
    # heard it. The snoops this replaced lost frames on a loaded machine and put the agent up to
    # 1.3 s off in the file. Where the agent's voice starts against the beep's end measures Asterisk,
    # not the recording, and is printed, not asserted: 4-160 ms on a machine at load 3-7
    # (docs/pacing.md), 163-1972 ms beside a 30-minute soak at load 18-20, and -303 to +2884 ms in
    # a fresh-clone run with eight workers at load 9-12 -- the beep's PlaybackFinished stamped late
    # as well as the agent's frames handed on late, so the event's time is no reference there.
    assert all(via == "mixmonitor" for via in recorded_via), ("recorded by MixMonitor over AMI", recorded_via)
    assert all(abs(ms) <= 20 for ms in offsets), "MixMonitor's two files are the same length (a frame)"
    assert all(ms <= 100 for ms in short_ms), "both channels run to the call's end (within 100 ms)"


def add_contact(db: Database, campaign_id: int, index: int, digit: str) -> None:
    with db.session() as s:
        s.add(Contact(campaign_id=campaign_id, phone_e164=f"+86138{index:07d}{digit}", name=f"转接{index}"))


def small_campaign(db: Database, name: str) -> int:
    """A progressive campaign of two channels with no contacts yet: the test adds them one by one."""
    spec = {
        "name": name,
        "kind": "agent",
        "mode": "progressive",
        "caller_id": "4001234567",
        "windows": {"daily": ["00:00-24:00"]},
        "max_attempts": 1,
        "max_channels": 2,
        "calls_per_second": 2,
    }
    with db.session() as s:
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="test")
        campaign.status = CampaignStatus.running
        s.flush()
        return campaign.id


async def until_true(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_a_nailed_agent_transfers_blind_and_after_a_consult_and_goes_back_to_the_holding_bridge(
    lab: Settings, db: Database, phones: list[BaresipPhone]
) -> None:
    """A callee put through to a nailed agent is transferred to the colleague, blind (call 1)
    and after a consult (call 2), as a rung call is (tests/integration/test_transfer_lab.py): the
    colleague's phone, nailed too, is freed and rung, takes the caller; the agent who handed the
    call on is back alone in their holding bridge, still nailed, free for the next callee."""
    with db.session() as s:
        for name in AGENTS:
            set_state(s, name, "available", "test")
    campaign_id = small_campaign(db, "nailed-xfer")
    seen: dict[str, object] = {}

    async def main() -> None:
        worker = DialerWorker(lab, db, campaigns={"nailed-xfer"})
        readiness = asyncio.create_task(ready_after_wrap(db))
        task = asyncio.create_task(worker.run())
        try:
            async with client(lab) as ari:
                await scenario(worker, ari)
        finally:
            for t in (task, readiness):
                t.cancel()
            await asyncio.gather(task, readiness, return_exceptions=True)

    def keeper(worker: DialerWorker) -> NailedAgents | None:
        links = list(worker.nodes.values())
        return links[0].keeper.nailed if links and links[0].keeper is not None else None

    def with_callee(worker: DialerWorker) -> tuple[str, str, str, str] | None:
        nailed = keeper(worker)
        for agent, leg in (nailed.legs if nailed else {}).items():
            if leg.callee is not None:
                return agent, leg.callee, leg.leg, leg.bridge
        return None

    def both_nailed(worker: DialerWorker) -> bool:
        nailed = keeper(worker)
        return nailed is not None and all(nailed.nailed(a) and nailed.legs[a].callee is None for a in AGENTS)

    def attempt_of(index: int) -> str | None:
        with db.session() as s:
            row = s.scalar(
                select(Attempt)
                .join(Contact)
                .where(Contact.campaign_id == campaign_id, Contact.name == f"转接{index}")
            )
            return row.id if row is not None else None

    def in_state(ref: str, *states: str) -> Transfer | None:
        found = transfer(ref)
        return found if found is not None and found.state in states else None

    def transfer(ref: str) -> Transfer | None:
        with db.session() as s:
            return s.scalar(
                select(Transfer).where(Transfer.call_ref == ref).order_by(Transfer.requested_at.desc())
            )

    async def ask(agent: str, ref: str, target: str, mode: str) -> None:
        with db.session() as s:
            request_transfer(s, TransferAsk(agent, ref, "agent", target, mode), utcnow())

    async def home_alone(ari: AriClient, agent: str, leg: str, bridge: str) -> None:
        found = await ari.get_bridge(bridge)
        assert found["channels"] == [leg], (f"{agent}'s holding bridge holds only their leg", found)

    async def scenario(worker: DialerWorker, ari: AriClient) -> None:
        for index, mode in enumerate(("blind", "attended")):
            await until_true("both agents nailed up and free", lambda: both_nailed(worker), 30)
            add_contact(db, campaign_id, index, "9")  # answers and talks ~60 s
            agent, callee, leg, bridge = await until_true(
                "the callee in a nailed bridge", lambda: with_callee(worker), 30
            )
            colleague = next(a for a in AGENTS if a != agent)
            ref: str = await until_true("the attempt", functools.partial(attempt_of, index))
            await ask(agent, ref, colleague, mode)
            if mode == "attended":
                await until_true("consulting", functools.partial(in_state, ref, "consulting"))
                found = await ari.get_bridge(bridge)
                assert leg not in found["channels"] and callee not in found["channels"], found
                with db.session() as s:
                    xfer = transfer(ref)
                    assert xfer is not None
                    request_step(s, agent, xfer.id, "complete", utcnow())
            done: Transfer = await until_true(
                f"{mode} transfer over", functools.partial(in_state, ref, "completed", "failed", "cancelled")
            )
            assert (done.state, done.result, done.to_agent) == ("completed", "answered", colleague), done
            nailed = keeper(worker)
            assert nailed is not None and nailed.nailed(agent), f"{agent} still nailed up"
            assert nailed.legs[agent].leg == leg and nailed.legs[agent].callee is None, "the same leg, free"
            await home_alone(ari, agent, leg, bridge)
            with db.session() as s:
                state = current_state(s, agent)
                assert state is not None and state.state == "available", (agent, state)

            def colleagues_call(ref: str = ref, colleague: str = colleague) -> bool:
                with db.session() as s:
                    row = s.get(Attempt, ref)
                    return row is not None and row.agent == colleague

            # The attempt's agent is a progress note, written with the dialer's next pass (one
            # transaction per pass), a moment after the transfer's row says completed (fresh run 3,
            # load 9-13: read before it landed).
            await until_true("the call and its wrap-up are the colleague's", colleagues_call, 10)
            seen[mode] = (agent, colleague)
            await ari.hangup(callee)  # the callee's call with the colleague ends
        await until_true("both agents nailed up and free again", lambda: both_nailed(worker), 30)
        nailed = keeper(worker)
        seen["nailed_calls"] = {a: leg.calls for a, leg in nailed.legs.items()} if nailed else {}

    started = time.monotonic()
    asyncio.run(main())
    FIGURES["transfer_test_s"] = round(time.monotonic() - started, 1)
    FIGURES["transfers"] = seen
    print("\nnailed lab transfers:", FIGURES)
    with db.session() as s:
        parts = list(s.scalars(select(CallRecording).where(CallRecording.campaign_id == campaign_id)))
    by = {(r.attempt_id, r.agent) for r in parts}
    assert len(parts) >= 4 and len(by) >= 4, ("each agent's part of each call recorded", by)


def test_a_nailed_leg_lost_while_the_event_stream_was_down_is_found_at_reconnection(
    lab: Settings, db: Database, phones: list[BaresipPhone]
) -> None:
    """The dialer's ARI line (a TCP proxy in front of the lab's ARI) drops and stays refused while
    bo's nailed leg is hung up straight on Asterisk: the hang-up event is lost with the socket.
    At the reconnection the dialer looks each holding bridge up, finds bo's leg gone and ends bo's
    nailed state (proved on the fake Asterisk in tests/unit/test_nailed_fake_ari.py); so the next
    callee, with an on a break, goes to bo's new leg after bo is ready again, never into the old,
    empty bridge (where the callee would hear silence)."""
    with db.session() as s:
        for name in AGENTS:
            set_state(s, name, "available", "test")
    campaign_id = small_campaign(db, "nailed-drop")
    node = lab.asterisk_nodes[0]
    ari_port = int(node.ari_url.split(":")[2].split("/")[0])
    seen: dict[str, object] = {}

    def keeper(worker: DialerWorker) -> NailedAgents | None:
        links = list(worker.nodes.values())
        return links[0].keeper.nailed if links and links[0].keeper is not None else None

    def free_leg(worker: DialerWorker, agent: str) -> str | None:
        nailed = keeper(worker)
        leg = nailed.legs.get(agent) if nailed is not None else None
        return leg.leg if leg is not None and leg.callee is None else None

    def attempt(index: int) -> Attempt | None:
        with db.session() as s:
            return s.scalar(
                select(Attempt)
                .join(Contact)
                .where(
                    Contact.campaign_id == campaign_id,
                    Contact.name == f"转接{index}",
                    Attempt.outcome.is_not(None),
                )
            )

    async def gone(ari: AriClient, channel: str) -> bool:
        try:
            await ari.get_channel(channel)
        except AriError as exc:
            assert exc.status == 404, exc
            return True
        return False

    async def scenario(worker: DialerWorker, proxy: FaultyProxy, ari: AriClient) -> None:
        await until_true(
            "both agents nailed up and free", lambda: all(free_leg(worker, a) for a in AGENTS), 30
        )
        old_leg = free_leg(worker, "bo")
        nailed = keeper(worker)
        assert nailed is not None and old_leg is not None
        old_bridge = nailed.legs["bo"].bridge
        connections = worker.nodes[node.name].connections
        proxy.refuse = True
        proxy.drop()
        await ari.hangup(old_leg)  # straight on Asterisk: the dialer's socket is down
        for _ in range(50):
            if await gone(ari, old_leg):
                break
            await asyncio.sleep(0.1)
        assert nailed.nailed("bo"), "the dialer cannot have heard the hang-up"
        proxy.refuse = False
        await until_true(
            "the event stream back", lambda: worker.nodes[node.name].connections > connections, 30
        )
        await until_true("bo no longer nailed up", lambda: not nailed.nailed("bo"), 15)
        with db.session() as s:
            set_state(s, "an", "break", "test")  # an's leg is released: only bo can take a callee
            set_state(s, "bo", "available", "ready")  # bo is ready again: a new availability
        new_leg = await until_true("bo nailed up again on a new leg", lambda: free_leg(worker, "bo"), 30)
        await until_true("an released", lambda: not nailed.nailed("an"), 15)
        assert new_leg != old_leg
        add_contact(db, campaign_id, 90, "6")  # answers and talks ~10 s
        done: Attempt = await until_true("the call put through", functools.partial(attempt, 90), 90)
        seen.update(
            outcome=done.outcome, agent=done.agent, calls=nailed.legs["bo"].calls, leg=nailed.legs["bo"].leg
        )
        assert (done.outcome, done.agent) == ("agent", "bo"), done
        assert nailed.legs["bo"].leg == new_leg and nailed.legs["bo"].calls == 1, "into bo's new bridge"
        try:
            found = await ari.get_bridge(old_bridge)
        except AriError as exc:  # the dead bridge was destroyed
            assert exc.status == 404, exc
            found = None
        assert found is None or not found.get("channels"), ("nobody in the old bridge", found)

    async def main() -> None:
        async with FaultyProxy("127.0.0.1", ari_port) as proxy:
            via = node.model_copy(update={"ari_url": f"http://127.0.0.1:{proxy.port}/ari"})
            worker = DialerWorker(
                lab.model_copy(update={"asterisk_nodes": [via]}), db, campaigns={"nailed-drop"}
            )
            task = asyncio.create_task(worker.run())
            try:
                async with client(lab) as ari:
                    await scenario(worker, proxy, ari)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    started = time.monotonic()
    try:
        asyncio.run(main())
    finally:
        with db.session() as s:
            set_state(s, "an", "available", "test")
    FIGURES["drop_test_s"] = round(time.monotonic() - started, 1)
    print("\nnailed lab, event stream dropped:", seen, FIGURES["drop_test_s"], "s")
