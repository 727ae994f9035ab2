"""An agent places calls through the service as `warmline up` runs it (the app with its dialer
worker in one process, LiveServer), the lab's Asterisk and a real pjsua2 softphone:

preview → dial (the agent's phone rings first; the far end, lab callee 9, only once they answer) →
talk (audio both ways, recorded in stereo) → wrap-up `callback` in two minutes → the same agent
finds it in "my callbacks", it is refused before it is due and dialled when it is (the phone
answers its own leg) → wrap-up `opt_out` → the number is on the do-not-call list and a dial to it,
by contact or typed, is refused.

The API's clock is the test's (real time plus an offset it moves by two minutes), so the callback
falls due without waiting; the dialer worker and Asterisk keep real time. Every branch of the call
logic is in tests/unit/test_placed_calls_fake_ari.py; this proves the parts meet.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from agents.profiles import update_profile
from core.ari import AriError
from core.auth.models import Role
from core.db import Database, utcnow
from core.i18n import use_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer import wrapup_api
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact, ContactState, DncGlobal
from recordings.models import CallRecording
from recordings.service import open_recording
from softphone.engine import Engine, EngineConfig
from softphone.events import EngineEvent, IncomingCall, RegistrationChanged
from softphone.phone import ActionError, Softphone
from softphone.presence import AgentStatus, NullPublisher
from tests.integration.test_softphone_lab import next_event
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils import signed_in, until
from tests.utils.live_server import LiveServer
from warmline import accounts, migrate

pytestmark = pytest.mark.integration

PORTS = lab_ports("preview_dial")
AGENT, PASSWORD = "mei", "lab-agent-password-1"
TALKER = "+8613800138009"  # lab callee 9: answers after ~1 s and talks for a minute
TALK_S = 4.0  # how long the agent and the callee talk before the agent hangs up
TONE_HZ = 700  # what the agent's phone says into the call
ZONE = ZoneInfo("Asia/Shanghai")
FIGURES: dict[str, float] = {}


class ShiftedClock:
    """The API's clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@dataclass
class World:
    settings: Settings
    db: Database
    url: str
    clock: ShiftedClock
    contact_id: int


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    var = tmp_path_factory.mktemp("preview-lab") / "var"
    prefix = f"warmline-preview-{uuid.uuid4().hex[:8]}"
    with private_lab(var, PORTS, dialer_enabled=True, topic_prefix=prefix) as settings:
        migrate.upgrade(settings.db_url)
        db = Database(settings.db_url)
        try:
            asyncio.run(accounts.add_user(settings, db, AGENT, Role.agent, PASSWORD, actor="test"))
            with db.session() as s:
                update_profile(s, AGENT, actor="test", manual_dial=True)
                spec = svc.build_spec(
                    {
                        "name": "w48",
                        "mode": "preview",
                        "manual_dial": True,
                        "windows": {"daily": ["00:00-24:00"]},
                    }
                )
                campaign = svc.create_campaign(s, spec, actor="test")
                campaign.status = CampaignStatus.running
                contact = Contact(
                    campaign_id=campaign.id, phone_e164=TALKER, name="王奶奶", fields={"社区": "朝阳"}
                )
                s.add(contact)
                s.flush()
                contact_id = contact.id
            clock = ShiftedClock()
            with LiveServer(settings, db, overrides={wrapup_api.clock: lambda: clock}) as server:
                yield World(settings, db, server.url, clock, contact_id)
        finally:
            db.dispose()


def attempts(db: Database) -> list[Attempt]:
    with db.session() as s:
        return list(s.scalars(select(Attempt).order_by(Attempt.attempt_no)))


def recorded(db: Database) -> set[str | None]:
    with db.session() as s:
        return set(s.scalars(select(CallRecording.attempt_id)))


def contact(db: Database, contact_id: int) -> Contact:
    with db.session() as s:
        found = s.get(Contact, contact_id)
        assert found is not None
        return found


def tone_file(path: Path) -> Path:
    t = np.arange(8000 * 120) / 8000
    sf.write(path, (0.3 * np.sin(2 * np.pi * TONE_HZ * t) * 32767).astype(np.int16), 8000, subtype="PCM_16")
    return path


def levels(path: Path | BinaryIO) -> tuple[float, float, float]:
    """Left (agent) and right (far end) RMS in dBFS, and the tone's share of the left channel."""
    audio, rate = sf.read(path, dtype="int16")
    assert rate == 8000 and audio.ndim == 2 and audio.shape[1] == 2, "stereo: agent left, far end right"

    def dbfs(x: np.ndarray) -> float:
        return float(20 * np.log10(max(float(np.sqrt(np.mean((x / 32768.0) ** 2))), 1e-9)))

    left = audio[:, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(left)) ** 2
    freqs = np.fft.rfftfreq(left.size, 1 / rate)
    share = float(spectrum[(freqs > TONE_HZ - 5) & (freqs < TONE_HZ + 5)].sum() / max(spectrum.sum(), 1e-9))
    return dbfs(audio[:, 0]), dbfs(audio[:, 1]), share


async def talk_and_hang_up(phone: Softphone, db: Database, call_ref: str) -> None:
    """The far end answered: talk, then the agent hangs up and the wrap-up opens."""
    await until(lambda: any(a.id == call_ref and a.state is AttemptState.answered for a in attempts(db)), 60,
                interval=0.2, what="the far end answered")  # fmt: skip
    await until(lambda: any(c.status == "connected" for c in phone.calls.values()), 30, what="connected")
    await asyncio.sleep(TALK_S)  # the conversation, not a wait for something
    view = next(iter(phone.calls.values()))
    sample = await phone.engine.stats(view.id)
    assert sample is not None and sample.rx_packets > 100, "the agent hears the far end"
    await phone.act("hangup")
    await until(lambda: phone.wrapup is not None, 30, what="the wrap-up opens")
    assert phone.wrapup is not None and phone.wrapup.call_ref == call_ref, "the wrap-up is for this call"


async def scenario(w: World, tmp: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    server, sip = await signed_in(w.url, AGENT, PASSWORD)
    heard = tmp / "heard"
    config = EngineConfig(record_dir=heard, play_file=tone_file(tmp / "tone.wav"))
    async with (
        Engine(config) as engine,
        lab_client(w.settings) as ari,
        httpx.AsyncClient(base_url=w.url) as http,
    ):
        phone = Softphone(
            engine, AgentStatus(AGENT, NullPublisher()), server=server, on_wrapup=server.post_wrapup
        )
        queue: asyncio.Queue[EngineEvent | None] = engine.subscribe()
        await phone.start(sip)
        await next_event(queue, RegistrationChanged, registered=True)
        token = (await http.post("/api/auth/token", json={"username": AGENT, "password": PASSWORD})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}", "Accept-Language": "en"}

        # 1. preview: the next contact, masked, reserved to mei
        await phone.act("preview")
        assert phone.placed.preview is not None and phone.placed.preview["contact_id"] == w.contact_id
        assert phone.placed.preview["phone"] == "138****8009"

        # 2. dial (here by the API, so the phone rings instead of answering by itself): the agent's
        #    phone rings while nothing has dialled the far end
        started = time.monotonic()
        placed = await http.post("/api/agents/me/dial", headers=auth, json={"contact_id": w.contact_id})
        assert placed.status_code == 202, placed.text
        call_ref = placed.json()["call_ref"]
        ring = await next_event(queue, IncomingCall, timeout=30)
        FIGURES["dial_to_agent_ring_s"] = time.monotonic() - started
        assert ring.headers["attempt"] == call_ref and ring.headers.get("placed") == "1"
        with pytest.raises(AriError) as gone:
            await ari.get_channel(call_ref)
        assert gone.value.status == 404  # the far end is not dialled before the agent answers
        assert attempts(w.db)[0].state is AttemptState.created
        answered = time.monotonic()
        await phone.act("answer")
        await talk_and_hang_up(phone, w.db, call_ref)
        FIGURES["agent_answer_to_far_end_answer_s"] = time.monotonic() - answered - TALK_S

        # 3. wrap-up: callback in two minutes (the callee's local time)
        due = (w.clock() + timedelta(minutes=2)).astimezone(ZONE).replace(second=0, microsecond=0)
        await phone.act("wrapup", disposition="callback", callback_at=due.strftime("%Y-%m-%dT%H:%M"))
        await until(lambda: attempts(w.db)[0].ended_at is not None, 30, what="the dialer closed the call")
        first = attempts(w.db)[0]
        seen["first"] = (first.outcome, first.agent, first.disposition, first.detail.get("recording"))
        kept = contact(w.db, w.contact_id)
        seen["kept"] = (kept.state, kept.assigned_agent, kept.next_due_at == due)

        # 4. my callbacks: kept for mei, not yet due, refused if dialled now
        await phone.act("callbacks")
        [item] = phone.placed.callbacks
        seen["listed"] = (item["contact_id"], item["due"])
        with pytest.raises(ActionError, match="This callback is due at"):
            await phone.act("callback_call", contact_id=str(w.contact_id))

        # 5. two minutes later it is due; mei calls it from her list, and her phone answers its leg
        w.clock.offset += timedelta(minutes=2, seconds=5)
        await phone.act("callbacks")
        assert phone.placed.callbacks[0]["due"] is True
        await phone.act("callback_call", contact_id=str(w.contact_id))
        assert phone.placed.placing is not None
        second_ref = phone.placed.placing.call_ref
        await talk_and_hang_up(phone, w.db, second_ref)

        # 6. the callee opts out: on the do-not-call list at once, and never dialled again
        await phone.act("wrapup", disposition="opt_out")
        await until(lambda: attempts(w.db)[-1].ended_at is not None, 30, what="the second call closed")
        # The wrap-up can close the attempt while the recording is still being merged (seconds on
        # a loaded machine); stopping the service then would leave it to the next start's recovery.
        await until(lambda: len(recorded(w.db)) == 2, 60, what="both calls' recordings registered")
        refused = await http.post("/api/agents/me/dial", headers=auth, json={"contact_id": w.contact_id})
        typed = await http.post(
            "/api/agents/me/dial", headers=auth, json={"number": "138-0013-8009", "campaign": "w48"}
        )
        seen["refused"] = [(r.status_code, r.json()["detail"]["code"]) for r in (refused, typed)]
        await phone.close()
    await server.aclose()
    seen["heard"] = sorted(heard.glob("*.wav"))
    return seen


def test_preview_dial_talk_callback_and_opt_out(world: World, tmp_path: Path) -> None:
    with use_locale("en"):
        seen = asyncio.run(scenario(world, tmp_path))
    assert seen["first"][:3] == ("agent", AGENT, "callback")
    assert seen["kept"] == (ContactState.pending, AGENT, True), "the callback is mine, due when I said"
    assert seen["listed"] == (world.contact_id, False)
    assert seen["refused"] == [(409, "do_not_call"), (409, "do_not_call")]

    first, second = attempts(world.db)
    assert (second.outcome, second.agent, second.disposition) == ("agent", AGENT, "opt_out")
    assert second.detail["placed"]["kind"] == "callback"
    with world.db.session() as s:
        assert s.scalar(select(DncGlobal).where(DncGlobal.phone_e164 == TALKER)) is not None
        recordings = {r.attempt_id: r for r in s.scalars(select(CallRecording))}
    assert contact(world.db, world.contact_id).state is ContactState.done
    assert set(recordings) == {first.id, second.id}, "both calls recorded like every agent call"
    for attempt in (first, second):
        rec = recordings[attempt.id]
        assert (rec.agent, rec.campaign, rec.channels) == (AGENT, "w48", 2)
        with open_recording(world.settings, rec) as audio_file:  # stored encrypted: the one reader
            left, right, share = levels(audio_file)
        FIGURES[f"call{attempt.attempt_no}_agent_dbfs"], FIGURES[f"call{attempt.attempt_no}_callee_dbfs"] = (
            left,
            right,
        )
        assert share > 0.5, "the agent's tone is on the left"
        assert right > -45, "the callee's speech is on the right"
    heard = [levels_mono(p) for p in seen["heard"]]
    FIGURES["agent_heard_dbfs_min"] = min(heard, default=-99.0)
    assert len(heard) == 2 and min(heard) > -40, "the agent's phone heard the callee on both calls"


def levels_mono(path: Path) -> float:
    audio, _ = sf.read(path, dtype="int16")
    x = audio.astype(np.float64) if audio.ndim == 1 else audio[:, 0].astype(np.float64)
    return float(20 * np.log10(max(float(np.sqrt(np.mean((x / 32768.0) ** 2))), 1e-9)))


def test_zz_report_figures() -> None:
    print("preview lab figures:", {k: round(v, 3) for k, v in FIGURES.items()})
