"""Agent routing, bridging and stereo recording against the real lab.

A private lab (slot "bridge" in tests/lab.py) serves the module. Agents are
Debian's baresip, auto-answering, each sending a pure tone of its own pitch, so the recording can
tell who is on which channel: the agent's tone must be on the left, the lab callee's speech
(lab-talk, espeak-ng) on the right.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.handover import (
    CallOrigin,
    Handover,
    HandoverDeps,
    HandoverRequest,
    HandoverResult,
    QueuePolicy,
    SkillQueues,
)
from agents.models import AgentProfile, SipAccount
from agents.routing import set_state
from agents.states import current_state
from core.ari import AriClient
from core.ari_events import EventDispatcher
from core.auth.models import Role, User
from core.db import Database, utcnow
from core.settings import Settings
from recordings.models import CallRecording
from recordings.service import open_recording
from tests.lab import lab_ports, private_lab
from tests.utils import until
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from warmline import accounts
from warmline.lab import lab_status
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PW = "correct horse battery"
PORTS = lab_ports("bridge")
TALKER = "13800138009"  # lab callee 9: answers and talks ~60 s
TALK_S = 9.0  # how long agent and customer talk before the customer hangs up
FIGURES: dict[str, float] = {}


@dataclass
class Agent:
    name: str
    tone_hz: int
    phone: BaresipPhone


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    # A module that borrows these fixtures (test_inbound_lab) brings its own ports, so the two
    # can run at the same time.
    ports = getattr(request.module, "PORTS", PORTS)
    var = tmp_path_factory.mktemp("bridge-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    upgrade(url)
    with private_lab(var, ports, database_url=url) as settings:
        yield settings


@pytest.fixture(scope="module")
def db(lab: Settings) -> Iterator[Database]:
    database = Database(lab.db_url)
    yield database
    database.dispose()


async def endpoint_online(ari: AriClient, name: str, timeout: float = 15) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            info = await ari.request("GET", f"/endpoints/PJSIP/{name}")
            if info["state"] == "online":
                return True
        await asyncio.sleep(0.3)
    return False


@pytest.fixture(scope="module")
def agents(
    lab: Settings, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Agent]]:
    tmp = tmp_path_factory.mktemp("agents")
    made: dict[str, Agent] = {}
    endpoints: dict[str, str] = {}
    st = lab_status(lab)
    specs = {"mei": (["vaccination", "welfare"], 700), "lin": (["welfare"], 1000)}
    for name, (skills, hz) in specs.items():
        asyncio.run(accounts.add_user(lab, db, name, Role.agent, PW, actor="test"))
        with db.session() as s:
            user = s.scalar(select(User).where(User.name == name))
            assert user is not None
            s.merge(AgentProfile(user_id=user.id, skills=skills, daily_target_minutes=240))
            account = s.scalar(select(SipAccount).where(SipAccount.user_id == user.id))
            assert account is not None
            endpoints[name], secret = account.endpoint, account.secret
        sip = Baresip(endpoints[name], secret, st.sip_tls_port, st.ca_file)  # TLS + SRTP
        made[name] = Agent(name, hz, start_baresip(tmp / name, sip, tone_hz=hz))

    async def wait_online() -> None:
        async with client(lab) as ari:
            for name in made:
                assert await endpoint_online(ari, endpoints[name]), f"{name} registered"

    try:
        asyncio.run(wait_online())
        yield made
    finally:
        for agent in made.values():
            agent.phone.stop()


def client(settings: Settings) -> AriClient:
    st = lab_status(settings)
    return AriClient(st.ari_url, st.ari_user, st.ari_password, st.app)


@contextlib.asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[tuple[AriClient, EventDispatcher]]:
    """What the engine's runtime owns: one client, one dispatcher pumping the one event stream."""
    async with client(settings) as ari:
        dispatcher = EventDispatcher()
        pump = asyncio.create_task(dispatcher.run(ari.events()))
        try:
            await asyncio.wait_for(dispatcher.connected.wait(), 10)
            yield ari, dispatcher
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump


async def customer_call(ari: AriClient, dispatcher: EventDispatcher, number: str = TALKER) -> str:
    channel = f"cust-{uuid.uuid4()}"
    events = dispatcher.subscribe(channel)
    await ari.originate(f"Local/{number}@lab-pstn", channel_id=channel, app_args="customer", timeout=15)
    started = await events.wait_for(lambda e: e.get("type") == "StasisStart", timeout=15)
    assert started is not None, "the lab callee answered and entered Stasis"
    return channel


def make_available(db: Database, *names: str, minutes_ago: dict[str, int] | None = None) -> None:
    with db.session() as s:
        for name in names:
            ago = (minutes_ago or {}).get(name, 0)
            set_state(s, name, "available", "test", since=utcnow() - timedelta(minutes=ago))


def band_energy(x: np.ndarray, hz: float, rate: int = 8000, width: float = 5.0) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    band = (freqs > hz - width) & (freqs < hz + width)
    return float(spectrum[band].sum() / max(spectrum.sum(), 1e-9))


def rms_dbfs(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean((x.astype(np.float64) / 32768.0) ** 2)))
    return float(20 * np.log10(max(rms, 1e-9)))


def test_bridge_records_agent_left_customer_right(
    lab: Settings, db: Database, agents: dict[str, Agent]
) -> None:
    make_available(db, "mei", "lin", minutes_ago={"mei": 5, "lin": 1})

    async def scenario() -> tuple[object, float]:
        async with runtime(lab) as (ari, dispatcher):
            customer = await customer_call(ari, dispatcher)
            started = time.monotonic()
            handover = Handover(HandoverDeps(ari, dispatcher, db, lab, queues=SkillQueues()))
            request = HandoverRequest(
                customer,
                skill="vaccination",
                origin=CallOrigin(script="vaccination-v1"),
                policy=QueuePolicy(timeout=30),
            )
            task = asyncio.create_task(handover.connect(request))

            def mei_on_call() -> bool:
                with db.session() as s:
                    state = current_state(s, "mei")
                    return state is not None and state.state == "on_call"

            # The agent is rung and answers (auto): wait for that however long a busy machine
            # takes, then the two talk for TALK_S seconds.
            await until(lambda: task.done() or mei_on_call(), timeout=60, interval=0.1, what="mei on call")
            await asyncio.sleep(TALK_S)  # the conversation, not a wait for something
            assert not task.done(), "the call stays bridged until someone hangs up"
            assert mei_on_call()
            await ari.hangup(customer)
            result = await asyncio.wait_for(task, 20)
            return result, time.monotonic() - started

    result, _total = asyncio.run(scenario())
    assert isinstance(result, HandoverResult)
    assert result.outcome == "connected", result
    assert result.agent == "mei", "only mei has the vaccination skill"
    assert result.ended_by == "customer"
    assert result.talk_seconds > 6, "talked until the customer hung up"
    FIGURES["bridge_wait_s"] = result.wait_seconds
    FIGURES["bridge_talk_s"] = result.talk_seconds
    assert result.recording_path is not None and result.recording_path.exists()
    path = result.recording_path
    rel = path.relative_to(lab.recordings_dir.resolve())
    assert len(rel.parts) == 4 and rel.parts[0].isdigit(), "YYYY/MM/DD/<uuid>.wav.enc"
    stem = path.name.removesuffix(".wav.enc")
    assert path.name.endswith(".wav.enc") and str(uuid.UUID(stem)) == stem, "named by UUID, encrypted at rest"
    assert TALKER not in str(path)
    assert not list(path.parent.glob("*.sln")), "the raw MixMonitor stream is converted and removed"

    with db.session() as session:
        stored = session.get(CallRecording, result.recording_id)
        assert stored is not None
        with open_recording(lab, stored) as audio_file:  # the one decrypting reader
            audio, rate = sf.read(audio_file, dtype="int16")
    assert rate == 8000 and audio.ndim == 2 and audio.shape[1] == 2
    left, right = audio[:, 0], audio[:, 1]
    FIGURES["left_dbfs"] = rms_dbfs(left)
    FIGURES["right_dbfs"] = rms_dbfs(right)
    FIGURES["left_tone_share"] = band_energy(left, 700)
    FIGURES["right_tone_share"] = band_energy(right, 700)
    assert FIGURES["left_tone_share"] > 0.8, "the agent's 700 Hz tone fills the left channel"
    assert FIGURES["right_tone_share"] < 0.02, "the customer's channel does not carry the agent"
    # The right channel is MixMonitor's t(): what was sent to the agent's phone, i.e. what the
    # agent heard -- the customer's speech.
    assert FIGURES["right_dbfs"] > -45, "the customer's speech is on the right channel"
    assert 6 < audio.shape[0] / rate < 14

    with db.session() as s:
        row = s.get(CallRecording, stem)
        assert row is not None
        assert row.path == str(rel) and row.channels == 2 and row.source == "agent-bridge"
        assert row.agent == "mei" and row.ended_at is not None
        # Registered when the call ended: checksum, size, and the analytics QA reviews draw on.
        assert row.sha256 and row.size_bytes and row.duration_s and row.status.value == "ok"
        # The agent here is a pure tone (no speech to a VAD); the lab callee talks.
        assert row.analytics is not None and row.analytics["talk_s"]["customer"] > 3
        state = current_state(s, "mei")
        assert state is not None and state.state == "wrap_up", "baresip reports no state: the bridge does"


def test_figures() -> None:
    print("\nbridge figures:", {k: round(v, 3) for k, v in FIGURES.items()})
