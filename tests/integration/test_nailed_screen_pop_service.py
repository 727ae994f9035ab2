"""A nailed call's screen pop from the nailing code to the agent's softphone, through the real parts:
``NailedAgents.connect`` (on the fake Asterisk: no lab needed) publishes the pop on the real
Mosquitto; ``warmline up`` in a process of its own holds it (agents.screen_pops) and answers the
softphone's long poll; the softphone (softphone.server_pops, the FakeEngine for SIP, over HTTP)
shows the pop on its open line, fetches the call's script with the pop's ticket -- the attempt is
nobody's yet in the database, so only the ticket lets it -- and starts the wrap-up when the callee
hangs up. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.handover import CallOrigin, Handover, HandoverDeps, HandoverRequest, QueuePolicy, SkillQueues
from agents.handover.nailed import NailedAgents, NailedDeps
from core.bus import Bus
from core.db import Database
from core.i18n import use_locale
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.ledger import claim
from softphone.fake import FakeEngine
from softphone.phone import PhoneOptions, Softphone
from softphone.presence import AgentStatus, HttpPublisher
from softphone.provisioning import ServerClient
from softphone.server_pops import ScreenPopFeed
from tests.fakes.ari import Callee
from tests.integration.test_sign_in_service import Service
from tests.unit.test_wrapup import T0, make
from tests.utils import until
from tests.utils.agents import (
    AGENT_PASSWORD,
    available,
    endpoint_of,
    fake_node,
    make_agents,
    write_ari_recordings,
)

pytestmark = pytest.mark.integration
SCRIPT = "# 开场白\n{name}您好，我是{agent}，社区的工作人员。"
PACED = QueuePolicy(
    timeout=2.0, moh=None, poll_every=0.1, ring_timeout=10, answer_within=1.5, inbound_first=True
)
TALK_S = 3.0


@pytest.fixture
def service(db_url: str, db: Database, tmp_path: Path) -> Iterator[Service]:
    make_agents(db, {"mei": ["welfare"]})
    var = tmp_path / "up"
    var.mkdir()
    up = Service(db_url, var)
    try:
        asyncio.run(until(up.answers, timeout=90, what="warmline up"))
        yield up
    finally:
        up.stop()


def test_a_nailed_calls_pop_reaches_the_softphone_through_the_service(
    service: Service, db: Database, tmp_path: Path
) -> None:
    make(db, script=SCRIPT)
    with db.session() as s:
        [call] = claim(s, svc.require_campaign(s, "c1"), 1, T0, node="lab")  # nobody's yet
    attempt = call.attempt_id
    # The nailing code runs where the dialer does; it shares the service's var (the ticket secret
    # is the service's) only through what it publishes.
    settings = Settings(
        var_dir=tmp_path / "dialer", database_url=db.url, topic_prefix=service.topic_prefix, _env_file=None
    )

    async def main() -> tuple[Softphone, float]:
        async with Bus.from_settings(settings, component="dialer") as bus:
            await asyncio.wait_for(bus.wait_connected(), 10)
            server = ServerClient(service.url)
            await server.login("mei", AGENT_PASSWORD)
            engine = FakeEngine()
            phone = Softphone(
                engine,
                AgentStatus("mei", HttpPublisher(server)),
                server=server,
                options=PhoneOptions(auto_answer=True),
            )
            await phone.start()
            feed = asyncio.create_task(ScreenPopFeed(server, phone).run())
            try:
                await phone.status.change("available")
                available(db, "mei")  # as the service's ledger has it once the phone said so
                line = engine.ring("warmline", {"nailed": "1"})  # the dialer calls mei's phone once
                await until(
                    lambda: phone.calls.get(line) is not None and phone.calls[line].status == "connected"
                )
                shown = await put_through(settings, db, bus, phone, attempt)
                await until(lambda: phone.wrapup is not None, timeout=20, what="the wrap-up")
                assert line in phone.calls, "the line stays open"
                return phone, shown
            finally:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)
                await phone.close()
                await server.aclose()

    with use_locale("en"):
        phone, shown = asyncio.run(main())
    desk = phone.desk
    assert desk is not None and desk.call_ref == attempt and desk.loaded, "the script came with the ticket"
    assert desk.script_html is not None and "王奶奶您好，我是mei" in desk.script_html
    assert phone.wrapup is not None and phone.wrapup.call_ref == attempt and phone.wrapup.campaign == "c1"
    put = [a.text for a in phone.announcements if a.text.startswith("Call put through")]
    assert len(put) == 1 and "campaign c1" in put[0], put
    print(f"\nnailed screen pop: published to shown on the softphone {1000 * shown:.0f} ms")
    assert shown < 5.0


async def put_through(settings: Settings, db: Database, bus: Bus, phone: Softphone, attempt: str) -> float:
    """The live callee into mei's nailed bridge (NailedAgents.connect, publishing on the real bus);
    seconds from the call to connect to the pop shown on the phone."""
    async with fake_node(settings, db, {"mei": Callee(answer_after=0.1)}) as node:
        node.asterisk.on_record = write_ari_recordings(settings)
        nailed = NailedAgents(NailedDeps(node.ari, node.dispatcher, db, settings, publish=bus.publish))
        handover = Handover(
            HandoverDeps(node.ari, node.dispatcher, db, settings, queues=SkillQueues(), nailed=nailed)
        )
        try:
            assert await nailed.nail_up("mei", endpoint_of(db, "mei").removeprefix("PJSIP/")) is not None
            callee = "cust-1"
            node.asterisk.place(callee, "Local/8613800000001@lab-pstn", stage="stasis", callee=Callee())
            asyncio.get_running_loop().call_later(TALK_S, lambda: node.asterisk.hangup_by_callee(callee))
            origin = CallOrigin(
                campaign="c1", attempt_id=attempt, contact_name="王奶奶", phone_masked="138****0001"
            )
            started = time.monotonic()
            request = HandoverRequest(callee, skill="welfare", origin=origin, policy=PACED)
            talk = asyncio.create_task(handover.connect(request))
            await until(
                lambda: any(c.pop is not None for c in phone.calls.values()), timeout=10, what="the pop"
            )
            shown = time.monotonic() - started
            result = await talk
            assert (result.outcome, result.agent, result.recording_id is not None) == (
                "connected",
                "mei",
                True,
            )
            return shown
        finally:
            await nailed.close()
