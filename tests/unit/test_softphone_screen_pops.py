"""The softphone's open line (nailed up): callees put through with no INVITE, their screen pops
fetched from the server (softphone.server_pops), against a server stand-in (httpx's mock transport)
and the FakeEngine, on virtual time: shown, spoken and looked up as a ringing call's pop, then the
wrap-up when the callee leaves, while the line stays open."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from core.i18n import use_locale
from softphone.fake import FakeEngine
from softphone.phone import PhoneOptions, Softphone
from softphone.presence import AgentStatus, NullPublisher
from softphone.provisioning import ServerClient
from softphone.server_pops import ScreenPopFeed
from tests.fakes.clock import run_virtual

NAILED = {"nailed": "1"}
POP: dict[str, Any] = {
    "seq": 3,
    "kind": "screen_pop",
    "attempt": "att-7",
    "campaign": "flu-2026",
    "fields": {
        "Campaign": "flu-2026",
        "Phone": "138****8000",
        "Attempt": "att-7",
        "Field-Name": "%E7%8E%8B%E5%A5%B6%E5%A5%B6",  # 王奶奶, percent-encoded as in the headers
        "Ticket": "ticket-for-mei",
    },
}
END = {"seq": 4, "kind": "screen_pop_end", "attempt": "att-7", "campaign": "flu-2026", "fields": {}}


class Server:
    """The warmline API: the pops it holds, one answer per poll (then 404: the feed stops)."""

    def __init__(self, *replies: int | dict[str, Any]) -> None:
        self.replies = list(replies)
        self.asked: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request)
        path = request.url.path
        if path == "/api/auth/token":
            return httpx.Response(200, json={"access_token": "t"})
        if path == "/api/agents/me/screen-pops":
            reply = self.replies.pop(0) if self.replies else 404
            if isinstance(reply, int):
                return httpx.Response(reply, json={"detail": "no"})
            return httpx.Response(200, json=reply)
        if path == "/api/agents/me/calls/att-7/script":
            return httpx.Response(200, json={"script_html": "<p>您好</p>", "fields": {"姓名": "王奶奶"}})
        if path == "/api/agents/me/dispositions":
            return httpx.Response(200, json={"dispositions": []})
        return httpx.Response(404, json={"detail": "not here"})

    def polls(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.asked if r.url.path.endswith("/screen-pops")]


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def scenario(server: Server, body: Any, *, locale: str = "en") -> Softphone:
    engine = FakeEngine()

    async def main() -> Softphone:
        client = ServerClient("http://warmline.test", transport=httpx.MockTransport(server))
        await client.login("mei", "pw")
        phone = Softphone(
            engine, AgentStatus("mei", NullPublisher()), server=client, options=PhoneOptions(auto_answer=True)
        )
        await phone.start()
        await phone.status.change("available")  # signed in and ready (log_in does this)
        try:
            with use_locale(locale):
                await body(phone, engine, client)
        finally:
            await phone.close()
        return phone

    with use_locale(locale):
        return run_virtual(main())


def state_of(phone: Softphone) -> str:
    return phone.status.state  # read afresh: the phone changes it as calls come and go


def said(phone: Softphone) -> list[str]:
    return [a.text for a in phone.announcements]


async def open_line(phone: Softphone, engine: FakeEngine) -> int:
    call = engine.ring("warmline", NAILED)
    await asyncio.sleep(0.1)
    return call


def test_a_pop_for_the_open_line_is_shown_spoken_and_looked_up_as_a_ringing_calls() -> None:
    server = Server({"pops": [POP], "last": 3}, {"pops": [END], "last": 4})

    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        call = await open_line(phone, engine)
        assert phone.calls[call].open_line and phone.calls[call].status == "connected"
        assert state_of(phone) == "available", "the open line is not a call: the agent stays free"
        feed = ScreenPopFeed(client, phone)
        await feed.deliver(POP)
        await asyncio.sleep(0.1)
        view = phone.calls[call]
        assert (view.ref, view.remote, state_of(phone)) == ("att-7", "138****8000", "on_call")
        assert view.pop is not None and view.pop.campaign == "flu-2026"
        assert view.pop.fields == {"phone": "138****8000", "name": "王奶奶"}
        assert phone.view()["calls"][0]["pop"]["fields"] == view.pop.fields, "the page shows it"
        assert phone.desk is not None and phone.desk.loaded and phone.desk.script_html == "<p>您好</p>"
        pops.append(view.pop)
        await feed.deliver(END)
        assert call in phone.calls and call in engine.live, "the line stays open"
        assert phone.calls[call].pop is None and phone.calls[call].ref != "att-7"
        assert phone.wrapup is not None and phone.wrapup.call_ref == "att-7"
        assert phone.wrapup.campaign == "flu-2026" and state_of(phone) == "wrap_up"
        # The same fields in a ringing call's INVITE make the same pop.
        rung = engine.ring("warmline", {k.lower(): v for k, v in POP["fields"].items()})
        await asyncio.sleep(0.1)
        pops.append(phone.calls[rung].pop)

    pops: list[Any] = []
    phone = scenario(server, body)
    assert pops[0] == pops[1], "the pop shown is a ringing call's"
    with use_locale("en"):
        details = pops[0].spoken()
    assert details == "campaign flu-2026; phone 138****8000; name 王奶奶"
    words = [a for a in phone.announcements if a.text.startswith("Call put through")]
    assert [(a.text, a.politeness) for a in words] == [
        (f"Call put through from 138****8000. {details}.", "assertive")
    ]
    assert f"Incoming call from warmline. {details}. Press F2 to answer." in said(phone), "said alike"
    assert "Line open: calls will come through without ringing." in said(phone)
    script = next(r for r in server.asked if r.url.path.endswith("/script"))
    assert script.headers["X-Warmline-Ticket"] == "ticket-for-mei", "the pop's ticket fetches the script"


def test_the_pop_is_said_in_chinese() -> None:
    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        await open_line(phone, engine)
        await ScreenPopFeed(client, phone).deliver(POP)

    phone = scenario(Server(), body, locale="zh-CN")
    assert "呼叫中心正在为您保持线路：来电将直接接入，不再振铃。按 F2 接听。" in said(phone)
    assert any(w.startswith("138****8000 的电话已直接接入。") and "王奶奶" in w for w in said(phone)), said(
        phone
    )


def test_the_feed_polls_after_what_it_got_and_backs_off_while_the_server_is_away() -> None:
    sleeps = Sleeps()
    server = Server({"pops": [POP], "last": 3}, 503, 502, {"pops": [], "last": 3}, 503)

    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        await open_line(phone, engine)
        await ScreenPopFeed(client, phone, wait=25, sleep=sleeps).run()  # ends on the 404
        assert phone.status.state == "on_call", "the pop was put through"

    scenario(server, body)
    assert [p.get("after") for p in server.polls()] == [None, "3", "3", "3", "3", "3"]
    assert {p["wait"] for p in server.polls()} == {"25"}
    assert sleeps.slept == [1.0, 2.0, 1.0], "a growing pause, reset by an answer"


def test_a_pop_with_no_open_line_or_for_another_call_changes_nothing() -> None:
    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        assert not await phone.put_through({"attempt": "att-7"}), "no open line"
        await open_line(phone, engine)
        assert not await phone.put_through_ended("att-7"), "no call put through yet"
        assert await phone.put_through({"attempt": "att-7", "campaign": "flu-2026"})
        assert not await phone.put_through_ended("att-8"), "another call's end"
        assert phone.wrapup is None and phone.status.state == "on_call"

    scenario(Server(), body)


def test_the_open_line_hung_up_mid_call_ends_in_a_wrap_up_and_without_a_callee_in_none() -> None:
    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        first = await open_line(phone, engine)
        engine.remote_hangup(first)  # the service closed the line: no callee on it
        await asyncio.sleep(0.1)
        assert phone.wrapup is None and phone.status.state == "available"
        second = await open_line(phone, engine)
        await ScreenPopFeed(client, phone).deliver(POP)
        await phone.act("hangup")
        await asyncio.sleep(0.1)
        assert second not in phone.calls
        assert phone.wrapup is not None and phone.wrapup.call_ref == "att-7", (
            "the callee's call is wrapped up"
        )

    phone = scenario(Server(), body)
    assert "Your open line was closed; calls will ring again." in said(phone)


def test_the_server_answers_the_poll_with_the_fields_as_headers() -> None:
    server = Server()

    async def body(phone: Softphone, engine: FakeEngine, client: ServerClient) -> None:
        server.replies.append({"pops": [POP], "last": 3})
        reply = await client.screen_pops(None, wait=0)
        assert reply["pops"][0]["fields"]["Ticket"] == "ticket-for-mei"

    scenario(server, body)
    assert json.loads(json.dumps(server.polls())) == [{"wait": "0"}]
