"""A slow ARI is visible (issue 13, item 4; docs/faults.md "Visible"): the node's pressure says slow
and holding calls back -> the fault board lists ``ari_slow`` -> the campaign stats' `faults`,
/healthz (administrators), /console/system and the live page's notice say so (zh-CN, English kept)
-> one supervisors' alert (kind ``calls_held_back``) is raised when calls start being held back and
resolved when they no longer are. Clocks are the tests' own; the database parts run on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.auth import service as auth
from core.auth.models import Role
from core.db import Database
from core.settings import Settings
from dialer import campaigns as svc
from dialer.engine.faults import (
    HELD_BACK_KIND,
    DatabaseWatch,
    FaultBoard,
    HeldBackAlerts,
    campaign_faults,
)
from dialer.engine.pressure import HOLD_QUIET_S, Pressure
from dialer.models import CampaignStatus
from dialer.welfare import service as alerts
from dialer.welfare.models import Alert, AlertState
from tests.fakes.ari import FakeAsterisk
from tests.fakes.clock import run_virtual
from tests.unit.test_reconcile_fake_ari import (  # noqa: F401 - fixtures used by name
    FINISH_WITHIN,
    NODE,
    campaign_over,
    check_ledger,
    lab_callee,
    lab_settings,
    make_campaign,
    silent_prompts,
    worker,
)
from tests.utils import PASSWORD, login
from tests.utils.waiting import until
from warmline.app import create_app


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def slowed(clock: Clock) -> Pressure:
    """A node whose ARI answered an originate in 3 s (window cut) and whose window then refused starts."""
    p = Pressure(slow=2.0, timeout=10.0, max_window=20, clock=clock)
    for _ in range(4):
        p.sent(originate=True)
    p.answered(3.0, originate=True)
    assert p.allowance(10) < 10
    return p


def test_pressure_says_slow_and_holding_back_until_quiet() -> None:
    clock = Clock()
    p = Pressure(slow=2.0, timeout=10.0, max_window=2, clock=clock)
    p.originating = 2
    assert p.allowance(3) == 0 and not p.holding_back, "a full node (its channels) is not a slow ARI"
    assert p.fault()["degraded"] is False
    p = slowed(clock)
    fault = p.fault()
    assert fault["degraded"] and fault["slow"] and fault["holding_back"]
    assert fault["ari_ms"] == 3000 and fault["ari_window"] < 20 and fault["ari_held_back"] > 0
    clock.t += HOLD_QUIET_S - 1
    assert p.holding_back, "still within the quiet time"
    clock.t += 1
    assert not p.holding_back, "no start refused for HOLD_QUIET_S: no longer holding back"
    assert p.fault()["slow"], "three originates still wait for ARI"
    p.waiting = p.originating = 0  # (as if they had been answered then)
    assert p.is_slow and not p.fault()["degraded"], "no answer for HOLD_QUIET_S: nothing says it is slow now"
    p.sent(originate=False)
    assert p.fault()["slow"], "a request waits for ARI"
    p.answered(3.0, originate=False)
    for _ in range(30):
        p.sent(originate=True)
        p.answered(0.05, originate=True)
    assert p.fault() == {
        "degraded": False, "slow": False, "holding_back": False,
        "ari_ms": p.figures()["ari_ms"], "ari_window": 20, "ari_held_back": p.held_back, "ari_slow": 0,
    }  # fmt: skip


def test_the_board_lists_ari_slow_and_campaign_faults_carry_it(tmp_path: Any) -> None:
    clock = Clock()
    p = slowed(clock)
    fast = Pressure(clock=clock)
    board = FaultBoard(
        tmp_path / "dialer" / "faults.json",
        DatabaseWatch(lambda: None),
        bus_connected=lambda: True,
        ari=lambda: {"pbx1": p.fault(), "pbx2": fast.fault()},
    )
    state = board.write()
    assert state["status"] == "degraded" and state["degraded"] == ["ari_slow"]
    assert state["calls_held_back"] is True and state["new_calls_paused"] is False
    assert state["ari"]["pbx1"]["holding_back"] and not state["ari"]["pbx2"]["degraded"]
    faults = campaign_faults(tmp_path)
    assert faults["degraded"] == ["ari_slow"] and faults["calls_held_back"] is True
    assert faults["ari"] == {
        "ms": 3000, "window": int(p.window), "held_back": p.held_back, "nodes": ["pbx1"],
    }  # fmt: skip
    clock.t += HOLD_QUIET_S
    for _ in range(30):
        p.sent(originate=True)
        p.answered(0.05, originate=True)
    assert board.write()["status"] == "ok"
    assert "ari" not in campaign_faults(tmp_path), "the ARI figures only while it is slow"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    with db.session() as s:
        for name, role in (("mgr", Role.manager), ("sup", Role.supervisor), ("root", Role.admin)):
            auth.create_user(s, name, role, PASSWORD, actor="test")
        spec = {"name": "flu", "kind": "broadcast", "flow": "vaccination_reminder"}
        campaign = svc.create_campaign(s, svc.build_spec(spec), actor="t")
        campaign.status = CampaignStatus.running
    with TestClient(create_app(settings, db)) as c:
        yield c


def test_stats_healthz_system_and_live_page_say_ari_is_slow(
    settings: Settings, db: Database, client: TestClient
) -> None:
    clock = Clock()
    p = slowed(clock)
    held = p.held_back
    FaultBoard(
        settings.var_dir / "dialer" / "faults.json",
        DatabaseWatch(lambda: None),
        bus_connected=lambda: True,
        ari=lambda: {"lab": p.fault()},
    ).write()
    mgr = login(client, "mgr")
    faults = client.get("/api/campaigns/flu/stats", headers=mgr).json()["faults"]
    assert faults["status"] == "degraded" and faults["degraded"] == ["ari_slow"]
    assert faults["calls_held_back"] and faults["ari"]["ms"] == 3000 and faults["ari"]["held_back"] == held
    root = login(client, "root")
    body = client.get("/healthz", headers=root).json()
    assert body["status"] == "degraded" and body["dialer"]["degraded"] == ["ari_slow"]
    assert body["dialer"]["ari"]["lab"]["holding_back"] is True
    window = int(p.window)
    page = client.get("/console/campaigns/flu/live", headers=mgr).text
    assert 'aria-live="assertive"' in page
    assert (
        f"Asterisk 响应缓慢（3000 毫秒）：新呼叫已放慢，同时最多发起 {window} 个（已暂缓 {held} 个）。"
        in page
    )
    english = client.get("/console/campaigns/flu/live", headers=mgr | {"Accept-Language": "en"}).text
    assert (
        f"Asterisk is answering slowly (3000 ms): new calls are slowed down, at most {window} started "
        f"at once ({held} held back so far)." in english
    )
    system = client.get("/console/system", headers=root | {"Accept-Language": "en"}).text
    assert f"Asterisk lab answering slowly (3000 ms): at most {window} calls started at once" in system
    HeldBackAlerts(db).apply({"lab": p.fault()})
    listed = client.get("/console/alerts", headers=login(client, "sup")).text
    assert "Asterisk 节点 lab，响应缓慢：新呼叫正被暂缓。" in listed, "on the supervisors' alerts page"


def held_back_alerts(db: Database) -> list[Alert]:
    with db.session() as s:
        rows = list(s.scalars(select(Alert).where(Alert.kind == HELD_BACK_KIND).order_by(Alert.id)))
        s.expunge_all()
        return rows


def test_one_alert_raised_while_held_back_then_resolved(db: Database) -> None:
    clock = Clock()
    p = slowed(clock)
    watch = HeldBackAlerts(db)
    raised, resolved = watch.apply({"lab": p.fault()})
    assert len(raised) == 1 and resolved == []
    for _ in range(5):  # every pass while held back: nothing new
        clock.t += 1
        p.allowance(10)
        assert watch.apply({"lab": p.fault()}) == ([], [])
    assert HeldBackAlerts(db).apply({"lab": p.fault()})[0] == raised, "a restarted worker finds it open"
    [alert] = held_back_alerts(db)
    assert alert.state is AlertState.open and alert.contact_id is None and alert.attempt_id == "ari:lab"
    assert alert.detail["node"] == "lab" and alert.detail["ari_ms"] == 3000
    assert alerts.summary_text(alert) == "Asterisk 节点 lab，响应缓慢：新呼叫正被暂缓。"
    clock.t += HOLD_QUIET_S
    assert watch.apply({"lab": p.fault()}) == ([], raised)
    [alert] = held_back_alerts(db)
    assert alert.state is AlertState.resolved and alert.resolved_by == "dialer"
    assert watch.apply({"lab": p.fault()}) == ([], [])
    p.allowance(10)  # held back again: a new alert
    again, _ = watch.apply({"lab": p.fault()})
    assert len(again) == 1 and again != raised and len(held_back_alerts(db)) == 2


def test_a_supervisor_may_resolve_it_first(db: Database) -> None:
    clock = Clock()
    p = slowed(clock)
    watch = HeldBackAlerts(db)
    [alert_id], _ = watch.apply({"lab": p.fault()})
    with db.session() as s:
        alerts.resolve(s, alert_id, actor="sup", resolution="asked the admin to look at pbx1")
    p.allowance(10)
    assert watch.apply({"lab": p.fault()}) == ([], []), "not raised again within the same episode"
    clock.t += HOLD_QUIET_S
    assert watch.apply({"lab": p.fault()}) == ([], []), "nothing left to resolve"
    [alert] = held_back_alerts(db)
    assert alert.resolved_by == "sup"


def test_the_worker_shows_a_slow_ari_and_alerts_once(
    lab_settings: Settings,  # noqa: F811
    db: Database,
) -> None:
    """The whole worker against the fake Asterisk answering originates in 3 s for a while: the
    board file says ari_slow with calls held back, one alert is open; once ARI is fast again and
    nothing was held back for HOLD_QUIET_S, the board is ok and the alert resolved."""
    make_campaign(db, "0" * 60)
    board_path = lab_settings.var_dir / "dialer" / "faults.json"

    def board() -> dict[str, Any]:
        try:
            return dict(json.loads(board_path.read_text()))
        except (OSError, ValueError):
            return {}

    async def main() -> dict[str, Any]:
        asterisk = FakeAsterisk(default=lab_callee)
        asterisk.delay("originate", 3.0)
        only = worker(lab_settings, db, asterisk, "worker")
        seen: dict[str, Any] = {"degraded_board": None, "open_while_slow": None}

        async def watch() -> None:
            await until(lambda: "ari_slow" in board().get("degraded", []), 60, interval=0.2, what="board")
            seen["degraded_board"] = board()
            await until(lambda: held_back_alerts(db), 30, interval=0.2, what="the alert")
            seen["open_while_slow"] = [a.state for a in held_back_alerts(db)]
            asterisk._delays.clear()  # ARI is fast again

        def settled() -> bool:
            rows = held_back_alerts(db)
            return (
                bool(rows)
                and all(a.state is AlertState.resolved for a in rows)
                and board().get("status") == "ok"
            )

        watching = asyncio.create_task(watch())
        async with asyncio.timeout(FINISH_WITHIN + 120):
            await only.run(until=lambda: watching.done() and only.idle() and campaign_over(db) and settled())
        await watching
        return seen

    seen = run_virtual(main())
    check_ledger(db)
    state = seen["degraded_board"]
    assert state["status"] == "degraded" and state["ari"][NODE.name]["slow"]
    assert seen["open_while_slow"] == [AlertState.open]
    rows = held_back_alerts(db)
    assert len(rows) == 1, "one alert for the slow period, not one per pass"
    assert rows[0].resolved_by == "dialer" and rows[0].detail["node"] == NODE.name
