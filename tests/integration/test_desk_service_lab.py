"""The agent's desk through the service as `warmline up` runs it (the app with its workers in one
process, LiveServer), the lab's Asterisk, a real pjsua2 softphone and a private Mosquitto watched by
a real MQTT client (issue 10's "Done when" beside tests/integration/test_preview_dial_lab.py and
test_transfer_lab.py):

- a wrap-up ``welfare_concern`` → a welfare alert stored, listed for supervisors (API and console
  page) and published on the bus, with the ``wrapup`` event;
- the broker stopped during a wrap-up → the wrap-up is stored in the request all the same
  (disposition and note on the attempt), and once the broker is back the service's outbox sends
  the ``wrapup`` event, once;
- an inbound hotline call the agent transfers to an outside number its line lists (attended: the
  far side, lab callee 9, hears the agent while they consult and the caller after the join), and
  refused, in Chinese, for a number the line does not list; the supervisors' page shows it.

One service, one phone and one broker for the module (slot ``desk_service``); every branch is on
the fake Asterisk in tests/unit (test_wrapup*, test_welfare, test_inbound_transfer_numbers,
test_transfer_fake_ari).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
import soundfile as sf
from sqlalchemy import select

from agents.routing import set_state
from agents.transfer.models import Transfer
from core.ari import AriClient
from core.auth.models import Role
from core.bus import Bus
from core.db import Database, utcnow
from core.i18n import use_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer.models import Attempt, AttemptState, CampaignStatus, Contact
from dialer.welfare.models import Alert
from hotline.models import InboundCallRecord
from softphone.engine import Engine, EngineConfig
from softphone.events import IncomingCall, RegistrationChanged
from softphone.phone import Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.privacy import decode_header
from tests.integration.test_softphone_lab import next_event
from tests.lab import lab_ports, private_lab
from tests.utils import signed_in, until
from tests.utils.lab_audio import channel_hears, tone_file, tone_share
from tests.utils.live_server import LiveServer
from tests.utils.mosquitto import BusListener, Mosquitto
from warmline import accounts, migrate
from warmline.lab import lab_status

pytestmark = pytest.mark.integration
IN_MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the phone is the module's

PORTS = lab_ports("desk_service")
AGENT, SUPERVISOR, PASSWORD = "mei", "sue", "lab-agent-password-1"
TALKERS = ("+8613800138009", "+8613800138019")  # lab callee 9: answers after ~1 s and talks
HOTLINE = "12345"
OFFICE, OFFICE_NUMBER = "区民政局", "010-6555 0009"  # the line's outside number: a lab callee 9 too
NOT_LISTED = "010-6555 0019"
MEI_HZ, CALLER_HZ = 700, 1100  # what mei's phone and the inbound caller say into their calls
FIGURES: dict[str, float] = {}

LINE_YAML = """\
timezone: {zone}
numbers:
  "{HOTLINE}":
    name: desk-hotline
    flow: desk_line
    transfer_numbers:
      {OFFICE}: {OFFICE_NUMBER}
"""
# Straight to an agent: the menu's keys are the IVR labs' business, the transfer is this one's.
FLOW_YAML = """\
name: desk_line
voice: cmn
start: agent
nodes:
  agent:
    type: transfer
    skill: any
"""


def open_zone() -> str:
    """A zone in which the line is open now whatever the time: its hours are the default
    00:00-23:59, so the last minutes of a local day are avoided (8 hours apart, never both)."""
    return next(z for z in ("Asia/Shanghai", "UTC") if datetime.now(ZoneInfo(z)).strftime("%H:%M") < "23:55")


@dataclass
class World:
    settings: Settings
    db: Database
    url: str
    server: LiveServer
    broker: Mosquitto
    bus: BusListener
    contacts: tuple[int, int]

    @property
    def service_bus(self) -> Bus:
        bus: Bus = self.server.app.state.bus  # the service's own connection
        return bus


@dataclass
class Desk:
    phone: Softphone
    events: Any  # the engine's event queue
    http: httpx.AsyncClient
    supervisor: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("desk-service-lab")
    broker = Mosquitto(tmp / "mosquitto")
    broker.start()
    prefix = f"warmline-desk-{uuid.uuid4().hex[:8]}"
    listener = BusListener(broker.port, prefix)
    (tmp / "var" / "flows").mkdir(parents=True)
    (tmp / "var" / "flows" / "desk_line.yaml").write_text(FLOW_YAML, encoding="utf-8")
    (tmp / "hotline.yaml").write_text(
        LINE_YAML.format(zone=open_zone(), HOTLINE=HOTLINE, OFFICE=OFFICE, OFFICE_NUMBER=OFFICE_NUMBER),
        encoding="utf-8",
    )
    lab = private_lab(
        tmp / "var", PORTS, dialer_enabled=True, topic_prefix=prefix, mqtt_port=broker.port,
        inbound_config=tmp / "hotline.yaml",
    )  # fmt: skip
    try:
        with lab as settings:
            migrate.upgrade(settings.db_url)
            db = Database(settings.db_url)
            try:
                contacts = prepare(settings, db)
                with LiveServer(settings, db) as server:
                    yield World(settings, db, server.url, server, broker, listener, contacts)
            finally:
                db.dispose()
    finally:
        listener.close()
        broker.stop()


def prepare(settings: Settings, db: Database) -> tuple[int, int]:
    """mei (agent), sue (supervisor), a running preview campaign with two contacts who talk."""
    asyncio.run(accounts.add_user(settings, db, AGENT, Role.agent, PASSWORD, actor="test"))
    asyncio.run(accounts.add_user(settings, db, SUPERVISOR, Role.supervisor, PASSWORD, actor="test"))
    with db.session() as s:
        spec = svc.build_spec({"name": "w10", "mode": "preview", "windows": {"daily": ["00:00-24:00"]}})
        campaign = svc.create_campaign(s, spec, actor="test")
        campaign.status = CampaignStatus.running
        rows = [
            Contact(campaign_id=campaign.id, phone_e164=TALKERS[0], name="王奶奶", fields={"社区": "朝阳"}),
            Contact(campaign_id=campaign.id, phone_e164=TALKERS[1], name="李爷爷", fields={"社区": "海淀"}),
        ]
        s.add_all(rows)
        s.flush()
        return rows[0].id, rows[1].id


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def desk(world: World, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Desk]:
    """mei's softphone, signed in and registered once for the module; sue's API token."""
    tmp = tmp_path_factory.mktemp("desk-phone")
    server, sip = await signed_in(world.url, AGENT, PASSWORD)
    config = EngineConfig(play_file=tone_file(tmp / "mei-tone.wav", MEI_HZ))
    async with Engine(config) as engine, httpx.AsyncClient(base_url=world.url) as http:
        phone = Softphone(
            engine, AgentStatus(AGENT, NullPublisher()), server=server, on_wrapup=server.post_wrapup
        )
        events = engine.subscribe()
        await phone.start(sip)
        await next_event(events, RegistrationChanged, registered=True)
        token = (
            await http.post("/api/auth/token", json={"username": SUPERVISOR, "password": PASSWORD})
        ).json()
        supervisor = {"Authorization": f"Bearer {token['access_token']}"}
        yield Desk(phone, events, http, supervisor)
        await phone.close()
    await server.aclose()


def attempt_of(db: Database, call_ref: str) -> Attempt:
    with db.session() as s:
        found = s.get(Attempt, call_ref)
        assert found is not None
        return found


async def call_and_hang_up(world: World, desk: Desk, contact_id: int) -> str:
    """Preview, call (the phone answers its own leg), the far end answers, mei hangs up: the
    wrap-up is open. The call's reference."""
    phone = desk.phone
    await phone.act("preview")
    assert phone.placed.preview is not None and phone.placed.preview["contact_id"] == contact_id
    await phone.act("preview_call")
    ring: IncomingCall = await next_event(desk.events, IncomingCall, timeout=30)
    call_ref = ring.headers["attempt"]
    await until(lambda: attempt_of(world.db, call_ref).state is AttemptState.answered, 60,
                interval=0.1, what="the far end answered")  # fmt: skip
    await until(lambda: any(c.status == "connected" for c in phone.calls.values()), 30, what="connected")
    await phone.act("hangup")
    await until(lambda: phone.wrapup is not None and phone.wrapup.call_ref == call_ref, 30,
                what="the wrap-up opens")  # fmt: skip
    return call_ref


def on_bus(world: World, call_ref: str, kind: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda topic, body: topic == f"calls/{call_ref}" and body.get("kind") == kind


@IN_MODULE_LOOP
async def test_welfare_concern_is_an_alert_for_supervisors_and_on_the_bus(world: World, desk: Desk) -> None:
    started = time.monotonic()
    call_ref = await call_and_hang_up(world, desk, world.contacts[0])
    note = "老人说这几天头晕，一个人住"
    await desk.phone.act("wrapup", disposition="welfare_concern", note=note)

    attempt = attempt_of(world.db, call_ref)  # stored in the request that carried it
    assert (attempt.disposition, attempt.note, attempt.agent) == ("welfare_concern", note, AGENT)
    with world.db.session() as s:
        [alert] = s.scalars(select(Alert).where(Alert.attempt_id == call_ref))
        alert_id, kind = alert.id, alert.kind
    assert kind == "agent_concern"

    listed = await desk.http.get("/api/welfare/alerts", headers=desk.supervisor)
    assert listed.status_code == 200, listed.text
    [shown] = [a for a in listed.json()["alerts"] if a["id"] == alert_id]
    assert shown["phone"] == "138****8009" and shown["contact_name"] == "王奶奶", shown
    async with httpx.AsyncClient(base_url=world.url) as browser:
        signed = await browser.post("/login", data={"username": SUPERVISOR, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        page = await browser.get("/console/alerts", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "王奶奶" in page.text and "138****8009" in page.text

    await until(lambda: world.bus.matching(lambda t, b: t == f"alerts/welfare-{alert_id}"), 30,
                interval=0.1, what="the alert on the bus")  # fmt: skip
    [(_topic, raised)] = world.bus.matching(lambda t, b: t == f"alerts/welfare-{alert_id}")
    assert (raised["kind"], raised["state"], raised["phone"]) == ("agent_concern", "open", "138****8009")
    await until(lambda: world.bus.matching(on_bus(world, call_ref, "wrapup")), 10, what="the wrap-up event")
    [(_topic, event)] = world.bus.matching(on_bus(world, call_ref, "wrapup"))
    assert event["detail"]["disposition"] == "welfare_concern" and note not in str(event), (
        "the note stays home"
    )
    await until(
        lambda: attempt_of(world.db, call_ref).ended_at is not None, 30, what="the dialer closed the call"
    )
    FIGURES["welfare_test_s"] = time.monotonic() - started


@IN_MODULE_LOOP
async def test_the_broker_stopped_during_a_wrap_up_loses_nothing(world: World, desk: Desk) -> None:
    started = time.monotonic()
    call_ref = await call_and_hang_up(world, desk, world.contacts[1])
    world.broker.stop()
    await until(lambda: not world.service_bus.connected, 10, what="the service saw the broker go")
    note = "家属下午在家，改天再打"
    posted = time.monotonic()
    await desk.phone.act("wrapup", disposition="follow_up", note=note)
    FIGURES["wrapup_with_broker_down_s"] = time.monotonic() - posted

    attempt = attempt_of(world.db, call_ref)  # stored at once, with the broker away
    assert (attempt.disposition, attempt.note) == ("follow_up", note)
    assert world.service_bus.pending >= 1, "the event waits in the service's outbox"
    assert not world.bus.matching(on_bus(world, call_ref, "wrapup"))

    world.broker.start()
    back = time.monotonic()
    try:
        await until(lambda: world.bus.matching(on_bus(world, call_ref, "wrapup")), 60,
                    interval=0.1, what="the wrap-up event after the broker came back")  # fmt: skip
    except AssertionError as exc:
        b = world.service_bus
        raise AssertionError(
            f"{exc}; service bus connected={b.connected} pending={b.pending} connects={b.connects}; "
            f"listener saw {[t for t, _b in world.bus.seen][-10:]}; broker: {world.broker.log()}"
        ) from None
    FIGURES["broker_back_to_event_s"] = time.monotonic() - back
    await until(lambda: world.service_bus.pending == 0, 10, what="the outbox sent")
    [(_topic, event)] = world.bus.matching(on_bus(world, call_ref, "wrapup"))
    assert (event["detail"]["disposition"], event["detail"]["agent"]) == ("follow_up", AGENT)
    await until(
        lambda: attempt_of(world.db, call_ref).ended_at is not None, 30, what="the dialer closed the call"
    )
    FIGURES["broker_test_s"] = time.monotonic() - started


def transfers_of(db: Database, call_ref: str) -> list[Transfer]:
    with db.session() as s:
        return list(
            s.scalars(select(Transfer).where(Transfer.call_ref == call_ref).order_by(Transfer.requested_at))
        )


def to_office(db: Database, call_ref: str) -> Transfer | None:
    """The second transfer of the call (the first was refused)."""
    rows = transfers_of(db, call_ref)
    return rows[1] if len(rows) > 1 else None


def inbound_call(db: Database, channel_id: str) -> InboundCallRecord | None:
    with db.session() as s:
        return s.get(InboundCallRecord, channel_id)


@IN_MODULE_LOOP
async def test_an_inbound_call_goes_to_a_number_its_line_lists_and_not_to_another(
    world: World, desk: Desk
) -> None:
    started = time.monotonic()
    phone = desk.phone
    with world.db.session() as s:
        set_state(s, AGENT, "available", "ready", since=utcnow())  # mei pressed Alt+R
    st = lab_status(world.settings)
    caller = f"caller-{uuid.uuid4().hex[:8]}"
    async with AriClient(st.ari_url, st.ari_user, st.ari_password, "desk-caller") as line:
        events = line.events()
        assert (await anext(events))["type"] == "WarmlineConnected"
        await line.originate(f"Local/{HOTLINE}@lab-inbound", channel_id=caller, app_args="caller", timeout=15)
        async with asyncio.timeout(15):
            async for event in events:
                if event.get("type") == "StasisStart" and event["channel"]["id"] == caller:
                    break
        await line.answer(caller)
        await line.play(caller, f"tone:{CALLER_HZ}")  # the caller talks into the hotline

        ring: IncomingCall = await next_event(desk.events, IncomingCall, timeout=30)
        call_ref = decode_header(ring.headers["attempt"])  # the inbound channel ("caller-…;2")
        await phone.act("answer")
        await until(lambda: any(c.status == "connected" for c in phone.calls.values()), 30, what="connected")

        # a number the line does not list: refused, said in Chinese, mei still with the caller
        with use_locale("zh-CN"):  # the phone asks the server in its agent's language
            await phone.act("transfer_choose", kind="number", target=NOT_LISTED, mode="attended")
            await until(lambda: (x := phone.transfers.current) is not None and x.state == "failed", 20,
                        what="the refusal")  # fmt: skip
        refused = phone.transfers.current
        assert refused is not None and refused.result == "not_allowed", refused
        said = [a for a in phone.announcements if a.text == refused.message]
        assert said and said[-1].politeness == "assertive", "the refusal is said at once"
        assert refused.message.startswith("此通话不允许转接到"), refused.message
        assert any(c.status == "connected" for c in phone.calls.values()), "mei is still with the caller"

        # the office, by the name the line gives it: mei consults, then joins them and leaves
        await phone.act("transfer_choose", kind="number", target=OFFICE, mode="attended")
        asked = time.monotonic()
        await until(lambda: (t := to_office(world.db, call_ref)) is not None and t.state != "requested"
                    and t.state != "ringing", 30, interval=0.1, what="the office answered")  # fmt: skip
        office = to_office(world.db, call_ref)
        assert office is not None and office.state == "consulting", (
            (office.state, office.result) if office else None
        )
        FIGURES["ask_to_office_consulting_s"] = time.monotonic() - asked
        [(leg, dialled)] = [  # the leg in the service's app, not its Local channel's other half (;2)
            (c["id"], c["name"]) for c in await line.channels() if re.fullmatch(r"xfer-[0-9a-f-]+", c["id"])
        ]
        assert "1065550009@lab-pstn" in dialled, "the number the line lists for the office is dialled"
        consult_ear = await channel_hears(world.settings, leg, seconds=2.0)
        await phone.act("transfer_complete")
        await until(lambda: (t := to_office(world.db, call_ref)) is not None
                    and t.state == "completed", 20, interval=0.1, what="joined")  # fmt: skip
        await until(lambda: phone.wrapup is not None and phone.wrapup.call_ref == call_ref, 20,
                    what="mei wraps up: an outside number takes no wrap-up")  # fmt: skip
        joined_ear = await channel_hears(world.settings, leg, seconds=2.0)
        await line.hangup(caller)
        await events.aclose()
    await until(lambda: inbound_call(world.db, call_ref) is not None, 30, what="the inbound call stored")
    async with httpx.AsyncClient(base_url=world.url) as browser:  # sue's Cases page lists it
        await browser.post("/login", data={"username": SUPERVISOR, "password": PASSWORD})
        page = (await browser.get("/console/cases", headers={"Accept-Language": "zh-CN"})).text
    handed_on = page[page.index('id="inbound-transfers"') :]
    assert "desk-hotline" in handed_on and "已接过来电者" in handed_on and "此通话不允许转接到" in handed_on

    audio, rate = sf.read(consult_ear, dtype="int16")
    FIGURES["office_hears_mei_share"] = tone_share(audio, MEI_HZ, rate)
    assert FIGURES["office_hears_mei_share"] > 0.3, "the office hears mei while they consult"
    audio, rate = sf.read(joined_ear, dtype="int16")
    FIGURES["office_hears_caller_share"] = tone_share(audio, CALLER_HZ, rate)
    assert FIGURES["office_hears_caller_share"] > 0.3, "after the join the office hears the caller"
    first, second = transfers_of(world.db, call_ref)
    assert (first.kind, first.state, first.result) == ("number", "failed", "not_allowed")
    assert (second.kind, second.target, second.state, second.result) == (
        "number", OFFICE, "completed", "answered",
    )  # fmt: skip
    FIGURES["inbound_transfer_test_s"] = time.monotonic() - started


def test_zz_report_figures() -> None:
    print("desk service lab figures:", {k: round(v, 3) for k, v in FIGURES.items()})
