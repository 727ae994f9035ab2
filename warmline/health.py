"""/healthz: is every part this service needs reachable right now? Checked live, in parallel.
The detail (each part, its error, its version) is for administrators only.

`status` is ``ok``, or ``degraded`` when a part is down or the dialer reports a fault (its
database or bus away: it then holds new calls back and keeps outcomes in its journal); the
``dialer`` section is what the dialer last wrote to ``var/dialer/faults.json`` (None when no
dialer reported in the last two minutes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Annotated, Any

import aiomqtt
import httpx
from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel
from sqlalchemy import text

from core.auth.models import Role, User
from core.db import Database
from core.deps import DatabaseDep, Public, SettingsDep, optional_user
from core.settings import AsteriskNode, Settings
from dialer.engine.faults import read_faults

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 3.0


class Check(BaseModel):
    ok: bool
    latency_ms: float | None = None
    detail: str = ""


class Health(BaseModel):
    ok: bool
    status: str = "ok"
    database: Check
    bus: Check
    asterisk: dict[str, Check]
    dialer: dict[str, Any] | None = None


async def _timed(probe: Awaitable[str]) -> Check:
    start = time.perf_counter()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):  # not wait_for: see core/bus.py
            detail = await probe
    except Exception as exc:  # any failure of a dependency is a finding, not a crash
        return Check(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
    return Check(ok=True, latency_ms=round((time.perf_counter() - start) * 1000, 1), detail=detail)


async def _database(db: Database) -> str:
    def ping() -> str:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return db.engine.dialect.name

    return await asyncio.to_thread(ping)


async def _bus(settings: Settings) -> str:
    async with aiomqtt.Client(
        settings.mqtt_host,
        settings.mqtt_port,
        username=settings.mqtt_username,
        password=settings.mqtt_password,
        timeout=CHECK_TIMEOUT,
    ):
        return f"{settings.mqtt_host}:{settings.mqtt_port}"


async def _asterisk(settings: Settings, node: AsteriskNode) -> str:
    auth = (node.ari_user, settings.node_ari_password(node))
    async with httpx.AsyncClient(auth=auth, timeout=CHECK_TIMEOUT) as client:
        resp = await client.get(f"{node.ari_url}/asterisk/info", params={"only": "system"})
        resp.raise_for_status()
        info: dict[str, Any] = resp.json()
    return str(info.get("system", {}).get("version", "up"))


async def check_health(settings: Settings, db: Database) -> Health:
    nodes = settings.asterisk_nodes
    results = await asyncio.gather(
        _timed(_database(db)), _timed(_bus(settings)), *(_timed(_asterisk(settings, n)) for n in nodes)
    )
    database, bus, *asterisk = results
    per_node = {n.name: c for n, c in zip(nodes, asterisk, strict=True)}
    ok = database.ok and bus.ok and all(c.ok for c in per_node.values())
    dialer = read_faults(settings.var_dir)
    degraded = not ok or (dialer is not None and dialer.get("status") != "ok")
    return Health(
        ok=ok,
        status="degraded" if degraded else "ok",
        database=database,
        bus=bus,
        asterisk=per_node,
        dialer=dialer,
    )


@router.get("/livez", dependencies=[Depends(Public())])
def livez() -> dict[str, bool]:
    """Liveness: the process answers. Orchestrators restart on this, not on /healthz, so an
    Asterisk outage does not restart the API too."""
    return {"ok": True}


class Status(BaseModel):
    ok: bool
    status: str = "ok"


@router.get("/healthz", dependencies=[Depends(Public())])
async def healthz(
    settings: SettingsDep,
    db: DatabaseDep,
    response: Response,
    user: Annotated[User | None, Depends(optional_user)],
) -> Health | Status:
    """503 while a part is unreachable. Which part, why, and the versions only for administrators
    (error text and versions tell an attacker what to try); everyone else gets `{"ok": ...}`."""
    health = await check_health(settings, db)
    if not health.ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    if user is not None and user.role is Role.admin:
        return health
    return Status(ok=health.ok, status=health.status)
