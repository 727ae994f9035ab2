"""Help in a hard call against the real lab (slot "help"): an agent's phone (baresip, a 700 Hz
tone) talks to a lab callee; the agent presses help (the API stores it); a supervisor's phone (a
1500 Hz tone) is put on the call through the API -- listen, then whisper -- by ARI snoop and
bridges. What each side hears is checked in audio: the agent's phone's own recording of what it
heard, and a snoop (spy out) of the callee's channel recorded by Asterisk. The whisper must be in
the agent's ear and not in the callee's; while only listening, nobody hears the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import select

from agents.help.models import SupervisorAction
from agents.help.plugin import register
from agents.models import SipAccount
from core.ari import AriClient
from core.ari_events import EventDispatcher
from core.auth.models import Role, User
from core.db import Database
from core.features import Registry, ServiceContext, StasisContext
from core.settings import Settings
from tests.integration.test_bridge_lab import band_energy, customer_call, endpoint_online
from tests.lab import lab_ports, private_lab
from tests.utils import login
from tests.utils.baresip import Baresip, BaresipPhone, start_baresip
from tests.utils.lab_audio import channel_hears
from warmline import accounts
from warmline.app import create_app
from warmline.lab import lab_status
from warmline.migrate import upgrade

pytestmark = pytest.mark.integration
PW = "correct horse battery"
PORTS = lab_ports("help")
AGENT_HZ, SUPERVISOR_HZ = 700, 1500
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var = tmp_path_factory.mktemp("help-lab") / "var"
    var.mkdir(parents=True)
    url = f"sqlite:///{var / 'warmline.db'}"
    upgrade(url)
    with private_lab(var, PORTS, database_url=url) as settings:
        yield settings


def client(settings: Settings, app: str | None = None) -> AriClient:
    st = lab_status(settings)
    return AriClient(st.ari_url, st.ari_user, st.ari_password, app or st.app)


def phone(lab: Settings, db: Database, tmp: Path, name: str, role: Role, hz: int) -> tuple[str, BaresipPhone]:
    """A user with a SIP account (the supervisor's desk phone is an endpoint like an agent's)."""
    asyncio.run(accounts.add_user(lab, db, name, Role.agent, PW, actor="test"))
    with db.session() as s:
        user = s.scalar(select(User).where(User.name == name))
        assert user is not None
        account = s.scalar(select(SipAccount).where(SipAccount.user_id == user.id))
        assert account is not None
        endpoint, secret = account.endpoint, account.secret
        user.role = role
    st = lab_status(lab)
    return endpoint, start_baresip(
        tmp / name, Baresip(endpoint, secret, st.sip_tls_port, st.ca_file), tone_hz=hz
    )


async def until_bridged(ari: AriClient, bridge_id: str, channel_id: str) -> None:
    """The supervisor's phone answered and the help plugin's Stasis handler bridged it."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if any(b["id"] == bridge_id and channel_id in b["channels"] for b in await ari.bridges()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{channel_id} never entered bridge {bridge_id}")


async def until_gone(ari: AriClient, bridge_id: str) -> None:
    """The supervisor hung up: the snoop and its bridge are taken down (join's bridge is the call's)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(b["id"] != bridge_id for b in await ari.bridges()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"bridge {bridge_id} is still there")


def share(path: Path, hz: float, window: tuple[float, float] | None = None) -> float:
    """The share of ``hz`` in the audio (within ``window`` seconds of it, trimmed 0.5 s each side)."""
    audio, rate = sf.read(path, dtype="int16")
    if audio.ndim == 2:
        audio = audio[:, 0]
    if window is not None:
        audio = audio[int((window[0] + 0.5) * rate) : int((window[1] - 0.5) * rate)]
        assert audio.size > rate, "at least a second of audio in the window"
    return band_energy(audio, hz, rate=rate)


def test_supervisor_listens_then_whispers_to_the_agent_only(
    lab: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("phones")
    db = Database(lab.db_url)
    mei_ep, mei = phone(lab, db, tmp, "mei", Role.agent, AGENT_HZ)
    sue_ep, sue = phone(lab, db, tmp, "sue", Role.supervisor, SUPERVISOR_HZ)
    registry = Registry()
    register(registry)
    app = create_app(lab, db)
    try:

        async def scenario() -> dict[str, object]:
            seen: dict[str, object] = {}
            async with client(lab) as ari:
                for ep in (mei_ep, sue_ep):
                    assert await endpoint_online(ari, ep), f"{ep} registered"
                tasks: set[asyncio.Task[None]] = set()
                dispatcher = EventDispatcher()

                def unrouted(event: dict[str, Any]) -> None:  # what the dialer worker does
                    args = event.get("args") or []
                    handler = (
                        registry.stasis.get(str(args[0]))
                        if event.get("type") == "StasisStart" and args
                        else None
                    )
                    if handler is not None:
                        dispatcher.subscribe(str(event["channel"]["id"]))
                        ctx = StasisContext("lab", ari, dispatcher, ServiceContext(lab, db, None))
                        task = asyncio.ensure_future(handler(ctx, event))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)

                dispatcher.unrouted = unrouted
                pump = asyncio.create_task(dispatcher.run(ari.events()))
                await asyncio.wait_for(dispatcher.connected.wait(), 10)
                customer = await customer_call(ari, dispatcher)
                agent_leg = f"agent-{uuid.uuid4().hex[:8]}"
                events = dispatcher.subscribe(agent_leg)
                await ari.originate(f"PJSIP/{mei_ep}", channel_id=agent_leg, app_args="agent-leg", timeout=20)
                assert await events.wait_for(lambda e: e.get("type") == "StasisStart", timeout=20)
                answered = time.monotonic()  # the agent's phone starts recording what it hears
                bridge = f"call-{uuid.uuid4().hex[:8]}"
                await ari.create_bridge("mixing", bridge)
                await ari.add_channel(bridge, [customer, agent_leg])

                def api(path: str, who: str, **body: str) -> dict[str, object]:
                    with TestClient(app) as c:
                        resp = c.post(path, headers=login(c, who, PW), json=body)
                        assert resp.status_code < 300, resp.text
                        return dict(resp.json())

                call_ref = "lab-call-1"
                await asyncio.to_thread(api, "/api/agents/me/help", "mei", call_ref=call_ref)
                listen = await asyncio.to_thread(
                    api, f"/api/supervisor/calls/{call_ref}/listen", "sue", endpoint=f"PJSIP/{sue_ep}"
                )
                sup_leg = f"help-{listen['id']}-supervisor"
                await until_bridged(ari, str(listen["bridge_id"]), sup_leg)
                seen["listen_window"] = (time.monotonic() - answered, 0.0)
                seen["listen_callee"] = await channel_hears(lab, customer, 4)
                # The agent's phone records from its first audio frame, which a loaded machine
                # delays past `answered`: this window's end is kept a second clear of the whisper
                # that follows it in the agent's file.
                listen_end = time.monotonic() - answered - 1.0
                seen["listen_window"] = (seen["listen_window"][0], listen_end)  # type: ignore[index]
                await ari.hangup(sup_leg)
                await until_gone(ari, str(listen["bridge_id"]))
                whisper = await asyncio.to_thread(
                    api, f"/api/supervisor/calls/{call_ref}/whisper", "sue", endpoint=f"PJSIP/{sue_ep}"
                )
                await until_bridged(ari, str(whisper["bridge_id"]), f"help-{whisper['id']}-supervisor")
                start = time.monotonic() - answered
                seen["whisper_callee"] = await channel_hears(lab, customer, 4)
                seen["whisper_window"] = (start, time.monotonic() - answered)
                await ari.hangup(f"help-{whisper['id']}-supervisor")
                await until_gone(ari, str(whisper["bridge_id"]))
                await ari.hangup(customer)
                with contextlib.suppress(Exception):
                    await ari.hangup(agent_leg)
                await asyncio.sleep(1)  # baresip writes its recording when the call ends
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
            return seen

        seen = asyncio.run(scenario())
    finally:
        mei.stop()
        sue.stop()
    with db.session() as s:
        actions = [
            (a.action, a.state) for a in s.scalars(select(SupervisorAction).order_by(SupervisorAction.id))
        ]
    assert actions == [("listen", "ringing"), ("whisper", "ringing")]
    FIGURES["agent_heard_whisper_share"] = share(mei.heard, SUPERVISOR_HZ, seen["whisper_window"])  # type: ignore[arg-type]
    FIGURES["agent_heard_supervisor_share_listen"] = share(mei.heard, SUPERVISOR_HZ, seen["listen_window"])  # type: ignore[arg-type]
    FIGURES["callee_heard_whisper_share_listen"] = share(Path(str(seen["listen_callee"])), SUPERVISOR_HZ)
    FIGURES["callee_heard_whisper_share_whisper"] = share(Path(str(seen["whisper_callee"])), SUPERVISOR_HZ)
    FIGURES["callee_heard_agent_share"] = share(Path(str(seen["whisper_callee"])), AGENT_HZ)
    FIGURES["supervisor_heard_agent_share"] = share(sue.heard, AGENT_HZ)
    FIGURES["wall_s"] = time.monotonic() - started
    print("\nhelp lab figures:", {k: round(v, 4) for k, v in FIGURES.items()})
    assert FIGURES["agent_heard_whisper_share"] > 0.05, "the agent hears the supervisor's whisper"
    assert FIGURES["callee_heard_whisper_share_whisper"] < 0.01, "the callee does not"
    assert FIGURES["agent_heard_supervisor_share_listen"] < 0.01, "a listening supervisor is heard by nobody"
    assert FIGURES["callee_heard_whisper_share_listen"] < 0.01, "nor while the supervisor listens"
    assert FIGURES["callee_heard_agent_share"] > 0.3, "the callee still hears the agent"
    assert FIGURES["supervisor_heard_agent_share"] > 0.05, "the supervisor hears the agent"
