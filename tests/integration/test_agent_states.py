"""Agent states published on the real Mosquitto reach the service's ledger and its API."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from core.auth import service
from core.auth.models import Role
from core.bus import Bus
from core.db import Database, utcnow
from core.messages import AgentState, CallQuality
from core.settings import Settings
from tests.utils import PASSWORD, login
from warmline.app import create_app


def test_published_state_lands_in_the_ledger(settings: Settings, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as client:
        headers = login(client, "mei")

        async def publish() -> None:
            async with Bus.from_settings(settings, component="softphone-test") as bus:
                await asyncio.wait_for(bus.wait_connected(), 10)
                await bus.publish(AgentState(agent="mei", state="available", since=utcnow()))
                await bus.clear_retained(AgentState.path_for(agent="mei"))

        asyncio.run(publish())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            hours = client.get("/api/agents/me/hours", headers=headers).json()
            if hours["state"] == "available":
                break
            time.sleep(0.1)
        assert hours["state"] == "available"
        assert hours["spoken"].startswith("今天")  # zh-CN: the request asks for no other language
        # The HTTP path for clients that cannot reach the bus: recorded and published.
        resp = client.post(
            "/api/agents/me/state", headers=headers, json={"state": "break", "reason": "lunch"}
        )
        assert resp.status_code == 200 and resp.json()["state"] == "break"


def test_call_quality_reaches_supervisors_by_http_and_bus(settings: Settings, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PASSWORD, actor="test")
        service.create_user(s, "lan", Role.agent, PASSWORD, actor="test")
        service.create_user(s, "boss", Role.supervisor, PASSWORD, actor="test")
    with TestClient(create_app(settings, db)) as client:
        good = {"call_ref": "c1", "codec": "G722", "jitter_ms": 4, "loss_pct": 0, "rtt_ms": 20, "mos": 4.4}
        assert (
            client.post("/api/agents/me/quality", headers=login(client, "mei"), json=good).status_code == 204
        )
        assert client.get("/api/agents/quality", headers=login(client, "mei")).status_code == 403

        async def publish_bad_line() -> None:
            async with Bus.from_settings(settings, component="softphone-test") as bus:
                await asyncio.wait_for(bus.wait_connected(), 10)
                bad = CallQuality(agent="lan", call_ref="c2", jitter_ms=80, loss_pct=9, rtt_ms=300, mos=2.1)
                await bus.publish(bad)
                await bus.clear_retained(CallQuality.path_for(agent="lan"))

        asyncio.run(publish_bad_line())
        boss = login(client, "boss")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = client.get("/api/agents/quality", headers=boss).json()
            if len(rows) == 2:
                break
            time.sleep(0.1)
        assert [r["agent"] for r in rows] == ["lan", "mei"], "worst line first"
        assert rows[0]["mos"] == 2.1 and rows[1]["codec"] == "G722"
