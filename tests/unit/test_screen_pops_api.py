"""Nailed calls' screen pops through the FastAPI app, on SQLite and PostgreSQL
(``GET /api/agents/me/screen-pops``, agents.screen_pops): each agent gets only their own, with a
ticket minted for them on the call (the rung hand-over's rules); a phone that starts gets the calls
still going; a poll is held until a pop comes; signed-out callers are refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agents.api import screen_pop_box
from agents.screen_pops import KEEP_SECONDS, ScreenPopBox
from core.auth import service
from core.auth.models import Role
from core.call_tickets import ticket_secret, verify
from core.db import Database, utcnow
from core.messages import CallEvent
from core.settings import Settings
from tests.utils import PASSWORD, login
from tests.utils.live_server import LiveServer
from tests.utils.waiting import until
from warmline.app import create_app

FIELDS = {"Campaign": "flu-2026", "Phone": "138****8000", "Attempt": "att-7", "Field-Name": "%E7%8E%8B"}


def pop(agent: str, attempt: str = "att-7", kind: str = "screen_pop") -> CallEvent:
    fields = {**FIELDS, "Attempt": attempt} if kind == "screen_pop" else {}
    return CallEvent(
        call_id=attempt, campaign="flu-2026", kind=kind, detail={"agent": agent, "fields": fields}
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def box() -> ScreenPopBox:
    return ScreenPopBox(clock=Clock())


@pytest.fixture
def app(settings: Settings, db: Database, box: ScreenPopBox) -> FastAPI:
    settings.asterisk_nodes = []
    with db.session() as s:
        for name, role in (("mei", Role.agent), ("lan", Role.agent), ("sup", Role.supervisor)):
            service.create_user(s, name, role, PASSWORD, actor="test")
    app = create_app(settings, db)
    app.dependency_overrides[screen_pop_box] = lambda: box
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def test_an_agent_gets_their_own_pops_with_a_ticket_for_them(
    client: TestClient, box: ScreenPopBox, settings: Settings
) -> None:
    box.put(pop("mei", "att-1"))
    box.put(pop("mei", "att-1", "screen_pop_end"))  # over before the phone started
    box.put(pop("lan", "att-2"))
    box.put(pop("mei", "att-3"))
    box.put(CallEvent(call_id="att-9", kind="amd", detail={"agent": "mei"}))  # not a pop: not kept
    mei = login(client, "mei")
    first = client.get("/api/agents/me/screen-pops", headers=mei, params={"wait": 0}).json()
    assert [(p["attempt"], p["kind"]) for p in first["pops"]] == [("att-3", "screen_pop")], "the call going"
    assert first["last"] == 4
    fields = first["pops"][0]["fields"]
    assert fields["Phone"] == "138****8000" and unquote(fields["Field-Name"]) == "王"
    ticket = verify(
        ticket_secret(settings.var_dir), fields["Ticket"], call_ref="att-3", agent="mei", now=utcnow()
    )
    assert ticket is not None and ticket.campaign == "flu-2026", "mei's phone may fetch the script"
    assert (
        verify(ticket_secret(settings.var_dir), fields["Ticket"], call_ref="att-3", agent="lan", now=utcnow())
        is None
    )
    again = client.get("/api/agents/me/screen-pops", headers=mei, params={"after": 4, "wait": 0}).json()
    assert again == {"pops": [], "last": 4}
    box.put(pop("mei", "att-3", "screen_pop_end"))
    ended = client.get("/api/agents/me/screen-pops", headers=mei, params={"after": 4, "wait": 0}).json()
    assert [(p["attempt"], p["kind"], p["fields"]) for p in ended["pops"]] == [
        ("att-3", "screen_pop_end", {})
    ]
    lan = client.get("/api/agents/me/screen-pops", headers=login(client, "lan"), params={"wait": 0}).json()
    assert [p["attempt"] for p in lan["pops"]] == ["att-2"], "never another agent's"


def test_old_pops_are_dropped_and_a_restarted_service_gives_what_it_holds(
    client: TestClient, box: ScreenPopBox
) -> None:
    box.put(pop("mei", "att-1"))
    assert isinstance(box.clock, Clock)
    box.clock.now += KEEP_SECONDS + 1
    box.put(pop("mei", "att-2"))
    mei = login(client, "mei")
    # A number the box never gave (the phone's service restarted): what is held, at once.
    reply = client.get("/api/agents/me/screen-pops", headers=mei, params={"after": 99, "wait": 20}).json()
    assert [p["attempt"] for p in reply["pops"]] == ["att-2"] and reply["last"] == 2


def test_signed_out_or_bad_requests_are_refused(client: TestClient) -> None:
    assert client.get("/api/agents/me/screen-pops").status_code == 401
    mei = login(client, "mei")
    assert client.get("/api/agents/me/screen-pops", headers=mei, params={"wait": 600}).status_code == 422
    assert client.get("/api/agents/me/screen-pops", headers=mei, params={"after": -1}).status_code == 422


def test_a_poll_is_held_until_a_pop_comes(app: FastAPI, box: ScreenPopBox) -> None:
    async def main() -> tuple[dict[str, Any], bool]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://warmline.test") as http:
            token = (
                await http.post("/api/auth/token", json={"username": "mei", "password": PASSWORD})
            ).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            params = {"after": 0, "wait": 20}
            poll = asyncio.create_task(http.get("/api/agents/me/screen-pops", headers=headers, params=params))
            await until(lambda: box.polls == 1, timeout=10, what="mei's poll waiting")
            box.put(pop("lan", "att-2"))  # someone else's: mei's poll goes on waiting
            await until(lambda: box.polls == 1, timeout=10, what="mei's poll waiting again")
            held = not poll.done()
            box.put(pop("mei", "att-3"))
            reply = await asyncio.wait_for(poll, 10)
            return reply.json(), held

    reply, held = asyncio.run(main())
    assert held, "nothing for mei: the poll waits"
    assert [p["attempt"] for p in reply["pops"]] == ["att-3"]


def test_a_poll_ends_with_its_phone_and_does_not_hold_the_service_when_it_stops(
    app: FastAPI, settings: Settings, db: Database, box: ScreenPopBox
) -> None:
    """Through `warmline up`'s own uvicorn set-up: a phone that quits mid-poll frees its poll at
    once (it used to wait out its 25 s), and a service stopping with a poll in flight cuts it after
    its grace rather than answering it 25 s later (the phone asks again within a second)."""

    async def poll(http: httpx.AsyncClient) -> asyncio.Task[httpx.Response]:
        token = (await http.post("/api/auth/token", json={"username": "mei", "password": PASSWORD})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        params = {"after": 0, "wait": 25}
        task = asyncio.create_task(http.get("/api/agents/me/screen-pops", headers=headers, params=params))
        await until(lambda: box.polls == 1, timeout=10, what="mei's poll waiting")
        return task

    async def main(server: LiveServer) -> httpx.Response | BaseException:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            (await poll(http)).cancel()  # the phone quits: its connection closes
            await until(lambda: box.polls == 0, timeout=10, what="the poll ended with its phone")
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            in_flight = await poll(http)
            await asyncio.to_thread(server.__exit__, None, None, None)
            [outcome] = await asyncio.gather(in_flight, return_exceptions=True)
            return outcome

    server = LiveServer(settings, db, overrides={screen_pop_box: lambda: box})
    with server:
        outcome = asyncio.run(main(server))
    # Cut: uvicorn answers 500 (or the connection drops); the old way waited the 25 s out and gave 200.
    cut = isinstance(outcome, httpx.HTTPError) or (
        isinstance(outcome, httpx.Response) and outcome.status_code >= 500
    )
    assert cut, f"the poll was answered after the stop: {outcome!r}"
