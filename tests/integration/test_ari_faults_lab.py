"""ARI faults against the real lab (docs/faults.md): a small campaign dialled through a proxy that
slows ARI down, stalls it past the client's timeout (originates reach Asterisk late, after the
dialer gave up waiting) and drops every connection (the events websocket too). Every branch is
proven on the fake Asterisk (tests/unit/test_ari_faults_fake_ari.py, test_ari_pressure.py,
test_dialer_lease.py); this shows the real Asterisk and a real TCP line agree, from the database:
every contact finished, nobody dialled twice at once, every attempt closed, no channel left up.

Lab on its own ports (slot "ari_faults", tests/lab.py). Prints the figures line.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core.ari import AriClient
from core.db import Database, utcnow
from core.settings import AsteriskNode, Settings
from dialer import campaigns as svc
from dialer.engine.ledger import LIVE_STATES
from dialer.engine.runtime import DialerWorker, _real_ari
from dialer.models import Attempt, Campaign, Contact, ContactState
from tests.conftest import on_database
from tests.lab import lab_client, lab_ports, private_lab
from tests.utils.campaigns import make_running_campaign
from tests.utils.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.integration

PORTS = lab_ports("ari_faults")
SCALE = 4.0  # dialer seconds per wall-clock second: a 20 s retry delay passes in 5 s
RETRY_SECONDS = 20
# 8 confirm, 3 busy, 2 congestion, 2 hang up at once, 1 opts out (the lab's callees by last digit).
DIGITS = "0000000033344887"
# A bound on a hang, not a speed test: about 70 s alone, more beside other labs on a loaded machine.
LIMIT_SECONDS = 240.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with private_lab(tmp_path_factory.mktemp("ari-faults") / "var", PORTS) as settings:
        yield settings


class ScaledClock:
    def __init__(self, scale: float) -> None:
        self.t0 = utcnow()
        self.m0 = time.monotonic()
        self.scale = scale

    def __call__(self) -> datetime:
        return self.t0 + timedelta(seconds=(time.monotonic() - self.m0) * self.scale)


def campaign_over(db: Database, name: str) -> bool:
    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        open_ = session.scalar(
            select(Contact.id)
            .where(
                Contact.campaign_id == cid,
                Contact.state.in_((ContactState.pending, ContactState.in_progress)),
            )
            .limit(1)
        )
        live = session.scalar(
            select(Attempt.id).where(Attempt.campaign_id == cid, Attempt.state.in_(LIVE_STATES)).limit(1)
        )
    return open_ is None and live is None


async def faults(proxy: FaultyProxy, log: list[str]) -> None:
    """The line to ARI over the run: slow, then stalled past the timeout, then cut, then well."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def at(second: float, what: str) -> None:
        await asyncio.sleep(max(0.0, t0 + second - loop.time()))
        log.append(f"{second:.0f}s {what}")

    await at(0, "latency 0.25 s")
    proxy.latency = 0.25
    await at(4, "stall")
    proxy.stall()
    await at(7.5, "flow")
    proxy.flow()
    await at(11, "drop every connection")
    proxy.drop()
    await at(16, "stall")
    proxy.stall()
    await at(19, "flow, latency 0")
    proxy.flow()
    proxy.latency = 0.0


async def run(settings: Settings, db: Database, name: str, originated: list[str]) -> dict[str, Any]:
    node = settings.asterisk_nodes[0]
    port = int(node.ari_url.split(":")[2].split("/")[0])
    async with FaultyProxy("127.0.0.1", port) as proxy:
        via = node.model_copy(update={"ari_url": f"http://127.0.0.1:{proxy.port}/ari"})
        dialer_settings = settings.model_copy(update={"asterisk_nodes": [via]})

        def factory(n: AsteriskNode, s: Settings) -> AriClient:
            ari = _real_ari(n, s)
            inner = ari.request

            async def request(method: str, path: str, **kw: Any) -> Any:
                if method == "POST" and path == "/channels":
                    originated.append(str(kw.get("channelId")))
                return await inner(method, path, **kw)

            ari.request = request  # type: ignore[method-assign]
            return ari

        worker = DialerWorker(
            dialer_settings, db, now=ScaledClock(SCALE), campaigns={name}, ari_factory=factory
        )
        log: list[str] = []
        injecting = asyncio.create_task(faults(proxy, log))
        started = time.monotonic()

        def done() -> bool:
            if time.monotonic() - started > LIMIT_SECONDS:
                raise TimeoutError(f"campaign not over in {LIMIT_SECONDS} s; faults: {log}")
            return injecting.done() and worker.idle() and campaign_over(db, name)

        await worker.run(until=done)
        link = next(iter(worker.nodes.values()))
        return {
            "seconds": time.monotonic() - started,
            "log": log,
            "connections": proxy.connections,
            "dropped": proxy.dropped,
            "strays_hung_up": link.strays.hung_up,
            "held_back": link.pressure.held_back,
            "window_cuts": link.pressure.cuts,
            "reconnects": link.connections - 1,
        }


async def stray_channels(settings: Settings) -> list[str]:
    """Channels still up in Asterisk, looked at directly (not through the proxy), after a grace for
    hang-ups already under way."""
    async with lab_client(settings) as ari:
        for _ in range(30):
            left = [c["id"] for c in await ari.channels()]
            if not left:
                return []
            await asyncio.sleep(0.5)
        return left


@on_database("postgresql")
def test_a_campaign_through_a_slow_stalling_dropping_ari(lab: Settings, db: Database) -> None:
    settings = lab.model_copy(
        update={
            "database_url": db.url,
            "dialer_ring_timeout": 12,
            "dialer_ari_timeout": 1.5,
            "dialer_ari_slow": 0.4,
        }
    )
    name = "ari-faults"
    make_running_campaign(db, name, DIGITS, retry_seconds=RETRY_SECONDS)
    with db.session() as session:
        # One call a second, so originates are in flight while the line stalls and drops.
        session.execute(update(Campaign).where(Campaign.name == name).values(calls_per_second=1.0))
        session.execute(update(Contact).values(next_due_at=None))
    originated: list[str] = []
    figures = asyncio.run(run(settings, db, name, originated))
    left = asyncio.run(stray_channels(settings))

    with db.session() as session:
        cid = svc.require_campaign(session, name).id
        contacts = list(session.scalars(select(Contact).where(Contact.campaign_id == cid)))
        attempts = list(
            session.scalars(
                select(Attempt)
                .where(Attempt.campaign_id == cid)
                .order_by(Attempt.contact_id, Attempt.attempt_no)
            )
        )
    lost = [
        c.id for c in contacts if c.state not in (ContactState.done, ContactState.exhausted) or c.attempts < 1
    ]
    unclosed = [a.id for a in attempts if a.state in LIVE_STATES or not a.outcome]
    doubled = 0
    for _cid, mine in itertools.groupby(attempts, key=lambda a: a.contact_id):
        for before, after in itertools.pairwise(list(mine)):
            # The next attempt may start only after the one before ended, plus the retry delay.
            if before.ended_at is None or after.created_at < before.ended_at + timedelta(
                seconds=RETRY_SECONDS
            ):
                doubled += 1
    doubled += sum(n - 1 for n in Counter(originated).values() if n > 1)  # an attempt originated twice
    timeouts = Counter(
        str(a.detail.get("originate_timeout")) for a in attempts if a.detail.get("originate_timeout")
    )
    print(
        f"\nfaults: {'; '.join(figures['log'])}\n"
        f"figures: contacts={len(contacts)} attempts={len(attempts)} lost={len(lost)} doubled={doubled} "
        f"unclosed={len(unclosed)} stray_channels={len(left)} "
        f"timeouts_followed={timeouts.get('exists', 0)} timeouts_absent={timeouts.get('absent', 0)} "
        f"timeouts_unknown={timeouts.get('unknown', 0)} strays_hung_up={figures['strays_hung_up']} "
        f"held_back={figures['held_back']} window_cuts={figures['window_cuts']} "
        f"reconnects={figures['reconnects']} dropped={figures['dropped']} "
        f"outcomes={dict(Counter(a.outcome for a in attempts))} seconds={figures['seconds']:.0f}"
    )
    for a in attempts:
        if a.outcome in ("interrupted", "failed") or a.detail.get("originate_timeout"):
            print(f"  {a.outcome}: {str(a.detail)[:300]}")
    assert len(contacts) == len(DIGITS)
    assert lost == [], "every contact finished"
    assert doubled == 0, "nobody dialled twice in one attempt window"
    assert unclosed == [], "every attempt closed with its outcome"
    assert left == [], "no channel left up in Asterisk"
    assert figures["dropped"] >= 1 and figures["reconnects"] >= 1, "the line was really cut"
