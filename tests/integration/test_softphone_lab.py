"""The softphone against the lab's real Asterisk, with real pjsua2 and real provisioning.

One lab for the module (own var dir; its own slot in tests/lab.py, so other labs are
untouched) and one warmline server (LiveServer) that provisions three agents: mei (the softphone
under test, in this process), lan (a second softphone: `warmline softphone --headless` as a
subprocess) and bai (Debian's baresip, an independent SIP client). The test itself plays the
platform's Stasis application: it originates calls, bridges them and routes `agent-call`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.ari import AriClient, AriError
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from softphone.audio import level_dbfs
from softphone.engine import Engine, EngineConfig
from softphone.events import (
    CallStateChanged,
    DtmfReceived,
    EngineEvent,
    IncomingCall,
    MediaChanged,
    RegistrationChanged,
    TransferProgress,
)
from softphone.phone import PhoneOptions, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.quality import mos_from_r, r_factor
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils import signed_in, until
from tests.utils.live_server import LiveServer
from warmline import accounts, migrate
from warmline.lab import lab_start, lab_stop

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("english")]

PORTS = lab_ports("softphone_lab")
ARI_PORT, SIP_PORT = PORTS.ari, PORTS.sip
PASSWORD = "lab-agent-password-1"
AGENTS = ("mei", "lan", "bai")
EXTENSIONS = {"1001": "mei", "1002": "lan", "1003": "bai"}  # the platform's directory
ENDPOINTS: dict[str, str] = {}  # agent -> their (random) PJSIP endpoint id, filled by `lab`
FIGURES: dict[str, float] = {}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    var = tmp_path_factory.mktemp("softphone-lab") / "var"
    with private_lab(var, PORTS) as settings:
        migrate.upgrade(settings.db_url)
        db = Database(settings.db_url)
        try:
            for name in AGENTS:
                change = asyncio.run(
                    accounts.add_user(settings, db, name, Role.agent, PASSWORD, actor="test")
                )
                assert change.sip_endpoint and change.sip_endpoint != name, "endpoint ids are not logins"
                ENDPOINTS[name] = change.sip_endpoint
            with LiveServer(settings, db) as server:
                yield settings, server.url
        finally:
            db.dispose()


ari_client = lab_client


class Switchboard:
    """The test's Stasis app: collects events, routes agent-call to PJSIP/<digits> and bridges."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self.events: list[dict[str, Any]] = []
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.bridges: list[str] = []

    async def __aenter__(self) -> Switchboard:
        stream = self.ari.events()
        assert (await anext(stream))["type"] == "WarmlineConnected"

        async def pump() -> None:
            async for event in stream:
                self.events.append(event)
                self._new.set()
                with contextlib.suppress(AriError):
                    await self._route(event)

        self._task = asyncio.create_task(pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for bridge in self.bridges:
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(bridge)

    async def _route(self, event: dict[str, Any]) -> None:
        if event["type"] != "StasisStart":
            return
        args = event.get("args", [])
        channel = event["channel"]["id"]
        if args[:1] == ["agent-call"] and len(args) > 1:
            # An agent dialled (or transferred to) a colleague: ring them, bridge when answered.
            target = EXTENSIONS.get(args[1])
            if target is None:
                await self.ari.hangup(channel, "unallocated")
                return
            await self.ari.originate(f"PJSIP/{ENDPOINTS[target]}", app_args=f"join,{channel}")
        elif args[:1] == ["join"]:
            with contextlib.suppress(AriError):
                await self.ari.answer(args[1])  # the dialling agent's channel waits in Stasis
            await self.bridge(args[1], channel)

    async def bridge(self, *channels: str) -> str:
        bridge_id = f"b-{uuid.uuid4().hex[:8]}"
        await self.ari.create_bridge("mixing", bridge_id)
        self.bridges.append(bridge_id)
        for c in channels:
            await self.ari.add_channel(bridge_id, c)
        return bridge_id

    async def wait(self, pred: Any, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if pred(event):
                    return event
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching ARI event in {timeout} s; last: {self.events[-5:]}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), left)


_HISTORY: dict[int, list[Any]] = {}


async def next_event(
    q: asyncio.Queue[EngineEvent | None],
    kind: type,
    timeout: float = 30.0,  # noqa: ASYNC109 - a safety net: generous, so a busy machine passes
    **match: Any,
) -> Any:
    """The first not yet claimed event of `kind` matching `match` (already received ones count)."""
    history = _HISTORY.setdefault(id(q), [])

    def hit(event: Any) -> bool:
        return isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items())

    for i, event in enumerate(history):
        if hit(event):
            return history.pop(i)
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {kind.__name__} {match} within {timeout} s; unclaimed: {history[-8:]}")
        try:
            event = await asyncio.wait_for(q.get(), left)
        except TimeoutError:
            continue
        if hit(event):
            return event
        history.append(event)


# ------------------------------------------------------------------ the agent's own softphone


async def test_register_answer_dtmf_hold_and_hear(lab: tuple[Settings, str], tmp_path: Path) -> None:
    settings, url = lab
    server, sip = await signed_in(url, "mei", PASSWORD)
    assert sip.password and sip.username == ENDPOINTS["mei"] and sip.realm == "warmline"
    assert sip.transport == "tls" and sip.srtp == "mandatory" and sip.ca_pem, "TLS, verified, and SRTP"
    record = tmp_path / "rec"
    async with Engine(EngineConfig(record_dir=record)) as engine, ari_client(settings) as ari:
        status = AgentStatus("mei", NullPublisher())
        phone = Softphone(engine, status, server=server, options=PhoneOptions())
        q = engine.subscribe()
        started = time.monotonic()
        await phone.start(sip)
        reg = await next_event(q, RegistrationChanged, registered=True)
        FIGURES["registration_s"] = time.monotonic() - started
        assert reg.code == 200 and phone.registered and status.state == "available"

        async with Switchboard(ari) as board:
            channel = f"t-{uuid.uuid4().hex[:8]}"
            started = time.monotonic()
            await ari.originate(
                f"PJSIP/{ENDPOINTS['mei']}",
                channel_id=channel,
                app_args="agent-test",
                variables={
                    "PJSIP_HEADER(add,X-Warmline-Campaign)": "flu-2026",
                    "PJSIP_HEADER(add,X-Warmline-Phone)": "13800138000",
                    "PJSIP_HEADER(add,X-Warmline-Field-Name)": "%E7%8E%8B%E5%A5%B6%E5%A5%B6",
                },
            )
            incoming = await next_event(q, IncomingCall)
            FIGURES["invite_to_ring_s"] = time.monotonic() - started
            assert incoming.headers["phone"] == "13800138000"
            await until(lambda: any("Incoming call" in a.text for a in phone.announcements), timeout=30)
            view = phone.calls[incoming.call]
            assert view.pop is not None and view.pop.fields == {"phone": "138****8000", "name": "王奶奶"}
            assert any("138****8000" in a.text for a in phone.announcements)
            assert not any("13800138000" in a.text for a in phone.announcements)

            answered = time.monotonic()
            await phone.act("answer")
            await board.wait(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == channel)
            await next_event(q, MediaChanged, status="active")
            FIGURES["answer_to_media_s"] = time.monotonic() - answered
            FIGURES["call_setup_s"] = time.monotonic() - started
            await until(lambda: phone.view()["state"] == "on_call", timeout=30)

            # DTMF softphone -> Asterisk
            await phone.act("dtmf", digits="1")
            await phone.act("dtmf", digits="#")
            await board.wait(
                lambda e: (
                    e["type"] == "ChannelDtmfReceived" and e["channel"]["id"] == channel and e["digit"] == "#"
                )
            )
            digits = [
                e["digit"]
                for e in board.events
                if e["type"] == "ChannelDtmfReceived" and e["channel"]["id"] == channel
            ]
            assert digits == ["1", "#"]
            # DTMF Asterisk -> softphone
            await ari.send_dtmf(channel, "42")
            got = [(await next_event(q, DtmfReceived)).digit for _ in range(2)]
            assert got == ["4", "2"]

            # hold and resume
            await phone.act("hold")
            await next_event(q, MediaChanged, status="local_hold")
            await board.wait(lambda e: e["type"] == "ChannelHold" and e["channel"]["id"] == channel)
            assert phone.calls[incoming.call].status == "held"
            await phone.act("hold")
            resumed = await next_event(q, MediaChanged, status="active")
            await board.wait(lambda e: e["type"] == "ChannelUnhold" and e["channel"]["id"] == channel)
            assert resumed.codec.startswith("G722"), "our own offer (re-INVITE) puts G.722 first"
            assert phone.calls[incoming.call].status == "connected"

            # audio: a prompt played by Asterisk reaches the recorder (ARI queues DTMF behind a
            # playback, so it comes last)
            await ari.play(channel, "sound:warmline/lab-talk")
            await phone.act("mute")
            assert phone.calls[incoming.call].muted
            await asyncio.sleep(3)
            quality = await phone.quality_of(phone.calls[incoming.call])
            # Read from the real stream: G.722, nothing lost, and the MOS the phone's own delay
            # and loss give. Not a threshold on the MOS itself: on a loaded machine the jitter
            # buffer grows (fresh run 3, a CPU-heavy job beside the suite: 253 ms one way, 3.98).
            assert quality is not None and quality.codec.startswith("G722") and quality.loss_pct == 0
            expected = mos_from_r(r_factor(quality.codec, quality.loss_pct, quality.one_way_ms))
            assert quality.one_way_ms > 0 and quality.mos == pytest.approx(expected, abs=0.02), quality

            await ari.hangup(channel)
            await next_event(q, CallStateChanged, state="disconnected")
            await until(lambda: phone.view()["state"] == "wrap_up" and phone.wrapup is not None, timeout=30)
            await phone.act("wrapup", disposition="1")
            assert status.state == "available"
        await phone.close()
    await server.aclose()

    wavs = list(record.glob("*.wav"))
    assert len(wavs) == 1 and len(wavs[0].stem) == 36  # named by UUID, never by number
    with wave.open(str(wavs[0])) as w:
        pcm = w.readframes(w.getnframes())
    assert level_dbfs(pcm) > -40, "the recorder heard the played prompt"


# ------------------------------------------------------------------ transfers to a second softphone


@pytest.fixture
def second_softphone(lab: tuple[Settings, str], tmp_path: Path) -> Iterator[Path]:
    _, url = lab
    record = tmp_path / "second"
    log = (tmp_path / "second.log").open("w")  # a file, not a pipe nobody reads (a full pipe blocks pjsua)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "warmline.cli", "softphone", "--headless", "--server", url),
            *("--user", "lan", "--password-stdin", "--auto-answer", "--record", str(record)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=REPO,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(PASSWORD + "\n")
    proc.stdin.close()
    # Starting a second Python with pjsua2 and signing in (a 64 MiB argon2 hash on the server)
    # takes seconds on an idle machine and much longer on a loaded one: wait for the line that
    # says "registered" (or for the process to end), with a limit only against a hang.
    deadline = time.monotonic() + 120
    registered = False
    while not registered and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break  # the softphone ended: its stderr says why
        registered = line.startswith("{") and bool(json.loads(line).get("registered"))
    if not registered:
        proc.kill()
        raise AssertionError(
            f"the second softphone did not register: {(tmp_path / 'second.log').read_text()[-2000:]}"
        )
    try:
        yield record
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def _caller_bridged_to_mei(
    ari: AriClient, board: Switchboard, q: asyncio.Queue[EngineEvent | None], phone: Softphone
) -> tuple[str, int]:
    """A lab callee that keeps talking, bridged to mei (as the platform does with an answered call)."""
    callee = f"c-{uuid.uuid4().hex[:8]}"
    agent = f"a-{uuid.uuid4().hex[:8]}"
    await ari.originate("Local/13800138009@lab-pstn", channel_id=callee, app_args="callee")
    await board.wait(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == callee, 30)
    await ari.originate(f"PJSIP/{ENDPOINTS['mei']}", channel_id=agent, app_args="agent-leg")
    incoming = await next_event(q, IncomingCall)
    await phone.act("answer")
    await board.wait(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == agent)
    await board.bridge(callee, agent)
    await next_event(q, MediaChanged, call=incoming.call, status="active")
    # the phone reads the engine's events on its own queue: wait until it, too, knows the call is
    # up (on a loaded machine it lagged this queue and refused Alt+C as "ringing")
    await until(lambda: phone.calls[incoming.call].status == "connected", timeout=30)
    return callee, incoming.call


async def test_blind_and_attended_transfer(lab: tuple[Settings, str], second_softphone: Path) -> None:
    settings, url = lab
    server, sip = await signed_in(url, "mei", PASSWORD)
    async with Engine(EngineConfig()) as engine, ari_client(settings) as ari:
        phone = Softphone(engine, AgentStatus("mei", NullPublisher()), server=server)
        q = engine.subscribe()
        await phone.start(sip)
        await next_event(q, RegistrationChanged, registered=True)
        async with Switchboard(ari) as board:
            # blind: Alt+T, "lan", Enter
            callee, call = await _caller_bridged_to_mei(ari, board, q, phone)
            await phone.act("transfer", target="1002")
            progress = await next_event(q, TransferProgress, final=True, timeout=30)
            assert progress.ok, progress
            await next_event(q, CallStateChanged, call=call, state="disconnected")
            # the caller is now talking to lan (the join bridge holds the callee and lan's leg)
            await board.wait(
                lambda e: (
                    e["type"] == "StasisStart"
                    and e["channel"]["name"].startswith(f"PJSIP/{ENDPOINTS['lan']}-")
                ),
                15,
            )
            await until(
                lambda: any(
                    "handed over to 1002" in a.text or "succeeded" in a.text for a in phone.announcements
                ),
                timeout=30,
            )
            await until(lambda: phone.wrapup is not None, timeout=30)  # opens as our leg ends
            await phone.act("wrapup", disposition="9")
            with contextlib.suppress(AriError):
                await ari.hangup(callee)

            # attended: Alt+C "lan" Enter, talk, Alt+J
            callee, call = await _caller_bridged_to_mei(ari, board, q, phone)
            await phone.act("consult", target="1002")
            await next_event(q, MediaChanged, call=call, status="local_hold")
            consult = next(c for c in phone.calls.values() if c.role == "consult")
            await next_event(q, MediaChanged, call=consult.id, status="active", timeout=30)
            await until(lambda: phone.calls[consult.id].status == "connected", timeout=30)
            await phone.act("complete")
            await next_event(q, CallStateChanged, call=call, state="disconnected", timeout=30)
            await board.wait(lambda e: e["type"] == "BridgeAttendedTransfer", 30)
            transfer = next(e for e in board.events if e["type"] == "BridgeAttendedTransfer")
            assert transfer["result"] == "Success", transfer
            with contextlib.suppress(AriError):
                await ari.hangup(callee)
        await phone.close()
    await server.aclose()
    assert await asyncio.to_thread(lambda: list(second_softphone.glob("*.wav"))), (
        "lan answered and recorded the transferred callers"
    )


# ------------------------------------------------------------------ registrar restarts


async def test_reregisters_after_asterisk_restart(lab: tuple[Settings, str]) -> None:
    settings, url = lab
    server, sip = await signed_in(url, "mei", PASSWORD)
    tcp = type(sip)(**{**sip.__dict__, "retry_interval": 2})  # TLS: a connection, like TCP
    async with Engine(EngineConfig()) as engine:
        phone = Softphone(engine, AgentStatus("mei", NullPublisher()), server=server)
        q = engine.subscribe()
        await phone.start(tcp)
        await next_event(q, RegistrationChanged, registered=True)
        await asyncio.to_thread(lab_stop, settings)
        lost = await next_event(q, RegistrationChanged, registered=False, timeout=30)
        assert not phone.registered and lost.code != 200
        assert any(
            a.politeness == "assertive" and "lost its connection" in a.text for a in phone.announcements
        )
        stopped = time.monotonic()
        await asyncio.to_thread(lab_start, settings)
        await next_event(q, RegistrationChanged, registered=True, timeout=60)
        FIGURES["reregister_after_restart_s"] = time.monotonic() - stopped
        assert phone.registered and any("connected to the call centre" in a.text for a in phone.announcements)
        async with ari_client(settings) as ari, Switchboard(ari) as board:
            channel = f"r-{uuid.uuid4().hex[:8]}"
            await ari.originate(f"PJSIP/{ENDPOINTS['mei']}", channel_id=channel, app_args="after-restart")
            await next_event(q, IncomingCall)
            await phone.act("answer")
            await board.wait(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == channel)
            await ari.hangup(channel)
        await phone.close()
    await server.aclose()


# ------------------------------------------------------------------ an independent SIP client


async def test_baresip_registers_and_auto_answers(lab: tuple[Settings, str], tmp_path: Path) -> None:
    baresip = shutil.which("baresip")
    if baresip is None:
        pytest.skip("baresip is not installed (scripts/install-system.sh test)")
    settings, url = lab
    async with httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/api/auth/token", json={"username": "bai", "password": PASSWORD})).json()
        sip = (
            await http.get("/api/agents/me/sip", headers={"Authorization": f"Bearer {token['access_token']}"})
        ).json()
    conf = tmp_path / "baresip"
    conf.mkdir()
    # As home agents register: TLS with the lab's CA, SRTP required.
    ca = conf / "ca.pem"
    ca.write_text(sip["ca_pem"])
    (conf / "accounts").write_text(
        f"<sip:{sip['username']}@127.0.0.1:{PORTS.sip_tls};transport=tls>;auth_pass={sip['password']};"
        "answermode=auto;mediaenc=srtp-mand\n"
    )
    heard, speak = tmp_path / "baresip-heard.wav", tmp_path / "baresip-says.wav"
    with wave.open(str(speak), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(16000 * 2))
    (conf / "config").write_text(
        "module_path\t\t/usr/lib/baresip/modules\nsip_listen\t\t127.0.0.1:0\n"
        f"audio_player\t\taufile,{heard}\naudio_alert\t\taufile,{heard}\naudio_source\t\taufile,{speak}\n"
        "module\t\t\tstdio.so\nmodule\t\t\tg711.so\nmodule\t\t\tg722.so\nmodule\t\t\taufile.so\n"
        "module\t\t\tausine.so\nmodule_app\t\taccount.so\nmodule_app\t\tmenu.so\n"
        f"module\t\t\tsrtp.so\nsip_cafile\t\t{ca}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        baresip,
        "-f",
        str(conf),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with ari_client(settings) as ari, Switchboard(ari) as board:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                endpoint = await ari.request("GET", f"/endpoints/PJSIP/{ENDPOINTS['bai']}")
                if endpoint.get("state") == "online":
                    break
                await asyncio.sleep(0.3)
            else:
                raise AssertionError("baresip did not register")
            channel = f"bs-{uuid.uuid4().hex[:8]}"
            await ari.originate(f"PJSIP/{ENDPOINTS['bai']}", channel_id=channel, app_args="baresip")
            try:
                await board.wait(lambda e: e["type"] == "StasisStart" and e["channel"]["id"] == channel, 30)
            except AssertionError:
                proc.terminate()
                out = (await proc.communicate())[0].decode(errors="replace")
                raise AssertionError(f"baresip did not answer; it said:\n{out[-3000:]}") from None
            await ari.hangup(channel)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)


def test_zz_report_figures() -> None:
    """Prints what was measured (registration, call setup, re-registration) for the closing note."""
    print("softphone lab figures:", json.dumps({k: round(v, 3) for k, v in FIGURES.items()}))
