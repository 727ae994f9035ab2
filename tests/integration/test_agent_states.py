"""Agent states published on the real Mosquitto reach the service's ledger and its API."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from core.auth import service
from core.auth.models import Role
from core.bus import Bus
from core.db import Database, utcnow
from core.messages import AgentState
from core.settings import Settings
from warmline.app import create_app

PW = "correct horse battery"


def test_published_state_lands_in_the_ledger(settings: Settings, db: Database) -> None:
    with db.session() as s:
        service.create_user(s, "mei", Role.agent, PW, actor="test")
    with TestClient(create_app(settings, db)) as client:
        token = client.post("/api/auth/token", json={"username": "mei", "password": PW}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}

        async def publish() -> None:
            async with Bus.from_settings(settings, component="softphone-test") as bus:
                await asyncio.wait_for(bus.wait_connected(), 10)
                await bus.publish(AgentState(agent="mei", state="available", since=utcnow()))
                await bus.clear_retained(AgentState.path_for(agent="mei"))

        asyncio.run(publish())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            hours = client.get("/api/agents/me/hours", headers=headers).json()
            if hours["state"] == "available":
                break
            time.sleep(0.1)
        assert hours["state"] == "available"
        assert hours["spoken"].startswith("today ")
        # The HTTP path for clients that cannot reach the bus: recorded and published.
        resp = client.post(
            "/api/agents/me/state", headers=headers, json={"state": "break", "reason": "lunch"}
        )
        assert resp.status_code == 200 and resp.json()["state"] == "break"
