"""Elder-welfare escalation against the real lab: an elder who never answers, or answers and
presses nothing, raises an alert that reaches the bus; one who says "I am fine" raises none.

Lab on its own ports (slot "welfare", tests/lab.py). The dialer's clock runs SCALE times faster than the wall
clock so the 1-minute retry delay passes in seconds.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from core.bus import Bus
from core.db import Database
from core.messages import WelfareAlert
from core.settings import Settings
from dialer import campaigns as svc
from dialer.lists.importer import import_list
from dialer.models import CampaignStatus, Contact
from dialer.welfare.events import run_notifier
from dialer.welfare.models import Alert
from tests.conftest import on_database
from tests.lab import lab_ports, private_lab
from tests.utils import until
from tests.utils.clock import ScaledClock
from warmline.demo_campaign import run_campaign

pytestmark = pytest.mark.integration
PORTS = lab_ports("welfare")
SCALE = 6.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("welfare") / "var", PORTS) as settings:
        yield settings


def welfare_campaign(db: Database, name: str) -> None:
    rule = {"delay": "60s", "growth": 1, "max_attempts": 2}
    spec: dict[str, Any] = {
        "name": name,
        "kind": "broadcast",
        "flow": "elder_welfare_check",
        "elder_welfare": True,
        "windows": {"daily": ["00:00-24:00"]},
        "retry": {o: dict(rule) for o in ("busy", "no_answer", "failed", "no_input", "machine", "abandoned")},
        "max_attempts": 2,
        "amd": "retry",
        "calls_per_second": 5,
    }
    with db.session() as session:
        svc.create_campaign(session, svc.build_spec(spec), actor="test")
    rows = "姓名,电话\n王奶奶,13900000010\n李爷爷,13900000011\n张奶奶,13900000012\n"
    report = import_list(db, name, io.BytesIO(rows.encode()), "elders.csv", actor="test")
    assert report.accepted == 3
    with db.session() as session:
        svc.set_status(session, name, CampaignStatus.running, actor="test")


@on_database("postgresql")
def test_unreached_and_silent_elders_raise_alerts_on_the_bus(lab: Settings, db: Database) -> None:
    settings = lab.model_copy(
        update={"database_url": db.url, "dialer_ring_timeout": 10, "topic_prefix": f"wl-welfare-{PORTS.slot}"}
    )
    name = "welfare-lab"
    welfare_campaign(db, name)
    heard: list[WelfareAlert] = []

    async def scenario() -> None:
        async with Bus.from_settings(settings, component="welfare-test") as bus:
            await asyncio.wait_for(bus.wait_connected(), 10)
            notifier = asyncio.create_task(run_notifier(settings, db, bus))
            async with bus.subscribe(WelfareAlert.pattern(), WelfareAlert) as alerts:

                async def listen() -> None:
                    async for _path, alert in alerts:
                        heard.append(alert)

                listener = asyncio.create_task(listen())
                await run_campaign(settings, db, name, now=ScaledClock(SCALE), out=None, limit_seconds=300)
                # the notifier publishes after the commit, in the background (a poll every 3 s)
                await until(lambda: len(heard) >= 2, timeout=60, interval=0.1, what="two alerts on the bus")
                listener.cancel()
            notifier.cancel()
            await asyncio.gather(notifier, listener, return_exceptions=True)

    asyncio.run(scenario())
    with db.session() as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
        # Contacts' alerts; a loaded machine may add a node's own (`calls_held_back`: ARI answered
        # slowly and new calls were held back), which names no contact (fresh run 3, load 9-13).
        alerts = {
            contacts[a.contact_id].phone_e164[-1]: a
            for a in session.scalars(select(Alert))
            if a.contact_id is not None
        }
        outcomes = {c.phone_e164[-1]: (c.last_outcome, c.attempts) for c in contacts.values()}
    assert outcomes["0"] == ("confirmed", 1)
    assert "0" not in alerts, "an elder who pressed 1 is fine: no alert"
    assert alerts["1"].kind == "no_input" and alerts["1"].state.value == "open"
    assert outcomes["2"] == ("no_answer", 2)
    assert alerts["2"].kind == "unreached", "never answered after every attempt"
    assert all("****" in a.phone_masked for a in alerts.values())
    assert {(a.kind, a.state) for a in heard} >= {("no_input", "open"), ("unreached", "open")}
    assert all("****" in a.phone for a in heard), "the bus carries masked numbers only"
