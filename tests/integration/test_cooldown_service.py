"""The agent hears their cool-down, through the real parts: a nailed call (``NailedAgents.connect``
on the fake Asterisk, no lab needed) runs past ``long_call_minutes``; its end writes the cool-down;
``warmline up`` in a process of its own publishes the start on the real Mosquitto
(agents.help.notices), holds it for the agent and answers the softphone's long poll
(agents.screen_pops); the softphone (the real Softphone over HTTP, the FakeEngine for SIP) says the
rest in Chinese, "say my state" includes it (from ``GET /api/agents/me/cooldown``), no callee is put
through meanwhile, and when it ends the phone says so. Then a caller's 5 for her (stored as the survey
stores it) is said on her phone as it happens, politely (workforce.compliments); a 3 is not.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.handover import CallOrigin, HandoverRequest, QueuePolicy
from agents.handover.nailed import NailedAgents, NailedDeps
from core.bus import Bus
from core.db import Database, utcnow
from core.i18n import use_locale
from core.settings import Settings
from ivr.survey import save_score
from softphone.fake import FakeEngine
from softphone.phone import PhoneOptions, Softphone
from softphone.presence import AgentStatus, HttpPublisher
from softphone.provisioning import ServerClient
from softphone.server_pops import ScreenPopFeed
from tests.fakes.ari import Callee
from tests.integration.test_sign_in_service import Service
from tests.utils import until
from tests.utils.agents import AGENT_PASSWORD, available, endpoint_of, fake_node, make_agents

pytestmark = pytest.mark.integration
PACED = QueuePolicy(
    timeout=2.0, moh=None, poll_every=0.1, ring_timeout=10, answer_within=1.5, inbound_first=True
)
TALK_S = 4.0  # past long_call_minutes (3 s)
REST_MIN = 0.15  # 9 s of rest


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


def said(phone: Softphone, text: str) -> bool:
    return any(text in a.text for a in phone.announcements)


def test_a_long_nailed_call_rests_the_agent_and_her_phone_says_so(
    service: Service, db: Database, tmp_path: Path
) -> None:
    # The nailing code runs where the dialer does, with the centre's rest rules.
    settings = Settings(
        var_dir=tmp_path / "dialer", database_url=db.url, topic_prefix=service.topic_prefix, _env_file=None
    )
    settings.long_call_minutes = 0.05
    settings.long_call_cooldown_minutes = REST_MIN

    async def main() -> tuple[Softphone, float, float, bool, float]:
        async with Bus.from_settings(settings, component="dialer") as bus:
            await asyncio.wait_for(bus.wait_connected(), 10)
            server = ServerClient(service.url)
            await server.login("mei", AGENT_PASSWORD)
            engine = FakeEngine()
            phone = Softphone(
                engine, AgentStatus("mei", HttpPublisher(server)), server=server,
                options=PhoneOptions(auto_answer=True),
            )  # fmt: skip
            await phone.start()
            feed = asyncio.create_task(ScreenPopFeed(server, phone).run())
            try:
                await phone.status.change("available")
                available(db, "mei")
                line = engine.ring("warmline", {"nailed": "1"})
                await until(lambda: line in phone.calls and phone.calls[line].status == "connected")
                async with fake_node(settings, db, {"mei": Callee(answer_after=0.1)}) as node:
                    nailed = NailedAgents(
                        NailedDeps(node.ari, node.dispatcher, db, settings, publish=bus.publish)
                    )
                    try:
                        endpoint = endpoint_of(db, "mei").removeprefix("PJSIP/")
                        assert await nailed.nail_up("mei", endpoint) is not None
                        first = "cust-1"
                        node.asterisk.place(
                            first, "Local/8613800000001@lab-pstn", stage="stasis", callee=Callee()
                        )
                        hung_up: list[float] = []

                        async def hang_up() -> None:
                            # TALK_S of talk, counted from the bridge (on a loaded machine the
                            # hand-over itself took 0.9 s: a timer from here left 3.1 s of talk).
                            channels = node.asterisk.channels
                            await until(lambda: channels[first].bridge is not None, what="bridged")
                            await asyncio.sleep(TALK_S)  # the call's length: what is injected
                            hung_up.append(time.monotonic())
                            node.asterisk.hangup_by_callee(first)

                        caller = asyncio.create_task(hang_up())
                        origin = CallOrigin(campaign="c1", attempt_id="att-long", phone_masked="138****0001")
                        request = HandoverRequest(first, skill="welfare", origin=origin, policy=PACED)
                        told = asyncio.create_task(
                            until(
                                lambda: said(phone, "冷静期（很长的通话之后）"),
                                timeout=30,
                                what="the rest said",
                            )
                        )
                        told.add_done_callback(lambda _: hung_up.append(time.monotonic()))
                        result = await nailed.connect(request)
                        await caller
                        assert result is not None and result.talk_seconds >= TALK_S - 0.5
                        await told
                        ended, heard = hung_up[0], hung_up[1] - hung_up[0]
                        await phone.do_status()
                        assert said(phone, "冷静期还剩"), [a.text for a in phone.announcements]
                        # Free again on her phone, but resting: the next callee is not put through.
                        available(db, "mei")
                        second = "cust-2"
                        node.asterisk.place(
                            second, "Local/8613800000002@lab-pstn", stage="stasis", callee=Callee()
                        )
                        offered = await nailed.connect(HandoverRequest(second, skill="welfare", policy=PACED))
                        await until(lambda: said(phone, "冷静期结束"), timeout=30, what="the end of the rest")
                        rested = time.monotonic() - ended
                        # A caller's 5 after the call reaches her phone as it happens (a 3 does not).
                        with db.session() as s:
                            save_score(
                                s, call_ref="att-meh", score=3, agent="mei", campaign="c1", now=utcnow()
                            )
                            save_score(
                                s, call_ref="att-good", score=5, agent="mei", campaign="c1", now=utcnow()
                            )
                        scored = time.monotonic()
                        await until(lambda: said(phone, "打了5分"), timeout=15, what="the compliment said")
                        complimented = time.monotonic() - scored
                    finally:
                        await nailed.close()
                return phone, heard, rested, offered is not None, complimented
            finally:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)
                await phone.close()
                await server.aclose()

    with use_locale("zh_CN"):
        phone, heard, rested, offered, complimented = asyncio.run(main())
    assert not offered, "no callee offered during the rest"
    texts = [a.text for a in phone.announcements]
    assert len([t for t in texts if t.startswith("冷静期（")]) == 1, texts
    assert len([t for t in texts if t.startswith("冷静期结束")]) == 1, texts
    print(f"\ncool-down: said {heard:.1f} s after the callee hung up; its end said after {rested:.1f} s")
    assert heard < 5.0
    assert rested >= REST_MIN * 60 - 1
    [compliment] = [a for a in phone.announcements if "满分5分" in a.text]
    assert compliment.politeness == "polite" and "打了5分" in compliment.text, "the 3 is no compliment"
    print(f"compliment: said {complimented:.1f} s after the score was stored")
    assert complimented < 5.0
