"""The dialer worker: one ARI event stream per Asterisk node, and the loop over running campaigns.

Each pass (every `dialer_tick` seconds): for every running campaign, the number of calls it may
start now is the smallest of its free channels (max_channels − live attempts), its calls-per-second
tokens and the chosen node's free channels; that many due contacts are claimed (attempts committed
first), then each is originated as its own task. When a call ends, its attempt and contact are
closed in one transaction and the outcome goes onto the bus. Campaign figures are published
(retained) every `dialer_stats_every` seconds.

Clocks are injected: `now()` (UTC, for due times and retries) and `monotonic()` (for pacing), so
tests drive time themselves. One worker per Asterisk node: reconciliation after a restart treats
every live attempt on its node as its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.ari import CONNECTED, RECONNECTED, AriClient, AriError
from core.bus import Bus
from core.db import Database, utcnow
from core.messages import BusMessage, CallEvent, CampaignStats
from core.settings import AsteriskNode, Settings
from dialer.campaigns import CampaignSpec, spec_of
from dialer.engine.calls import Call, CallPlan, CallReport, endpoint_for
from dialer.engine.ledger import Claimed, active_attempts, claim, close, mark
from dialer.lists.phones import mask
from dialer.models import AttemptState, Campaign, CampaignKind, CampaignStatus, Contact
from dialer.outcomes import Outcome
from dialer.pacing import Capacity, TokenBucket, calls_allowed
from dialer.reconcile import reconcile
from dialer.stats import campaign_figures
from ivr.check import load_flow
from core.ari_events import EventDispatcher
from ivr.flow import Flow
from ivr.runner import FlowRunner
from ivr.tts import PromptCache

log = logging.getLogger(__name__)

JSON = dict[str, Any]
REPO_FLOWS = Path(__file__).resolve().parents[2] / "config" / "ivr"
Unrouted = Callable[[str, JSON], None]


def flow_dirs(settings: Settings) -> list[Path]:
    return [settings.var_dir / "flows", REPO_FLOWS]


def find_flow(settings: Settings, name: str) -> Path | None:
    """A campaign's flow by name: NAME.yaml (or with '-' for '_') in var/flows, then config/ivr."""
    for folder in flow_dirs(settings):
        for stem in dict.fromkeys((name, name.replace("-", "_"), name.replace("_", "-"))):
            path = folder / f"{stem}.yaml"
            if path.is_file():
                return path
    return None


@dataclass
class NodeLink:
    """One Asterisk node as the worker sees it."""

    node: AsteriskNode
    ari: AriClient
    dispatcher: EventDispatcher
    runner: FlowRunner
    ready: bool = False  # connected and reconciled: calls may be placed
    calls: set[str] = field(default_factory=set)
    down_until: float = 0.0
    connections: int = 0  # ARI (re)connections seen
    pump: asyncio.Task[None] | None = None


@dataclass
class CampaignState:
    spec: CampaignSpec
    plan_key: tuple[Any, ...]
    flow: Flow | None
    bucket: TokenBucket
    error: str | None = None


class DialerWorker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        bus: Bus | None = None,
        now: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        campaigns: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        self.now = now
        self.monotonic = monotonic
        self.only = campaigns  # dial only these campaigns (demo, tests); None: every running one
        self.nodes: dict[str, NodeLink] = {}
        self.campaigns: dict[int, CampaignState] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.unrouted_handlers: list[Unrouted] = []
        self.closed_calls = 0
        self.on_closed: list[Callable[[Claimed, str], None]] = []
        self._stats_at = 0.0
        self._stopping = False

    # ------------------------------------------------------------ nodes

    def _link(self, node: AsteriskNode) -> NodeLink:
        ari = AriClient(node.ari_url, node.ari_user, self.settings.node_ari_password(node), node.app)
        name = node.name
        dispatcher = EventDispatcher(unrouted=lambda e: self._unrouted(name, e))
        prompts = PromptCache.for_var_dir(self.settings.var_dir)
        runner = FlowRunner(ari, prompts, recordings_dir=self.settings.recordings_dir)
        return NodeLink(node, ari, dispatcher, runner)

    def _unrouted(self, node: str, event: JSON) -> None:
        kind = event.get("type")
        if kind in (CONNECTED, RECONNECTED):
            link = self.nodes.get(node)
            if link is not None:
                link.connections += 1
                link.ready = False
                self._spawn(self._reconcile(link))
        for handler in self.unrouted_handlers:
            try:
                handler(node, event)
            except Exception:
                log.exception("unrouted ARI event handler failed")

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def start(self) -> None:
        for node in self.settings.asterisk_nodes:
            link = self._link(node)
            self.nodes[node.name] = link
            link.pump = asyncio.create_task(link.dispatcher.run(link.ari.events()), name=f"ari-{node.name}")

    async def _reconcile(self, link: NodeLink) -> None:
        """Match this node's live attempts with its channels; then the node may dial again."""
        try:
            channels = {c["id"]: c for c in await link.ari.channels()}
        except AriError as exc:
            log.warning("reconcile %s: cannot list channels: %s", link.node.name, exc)
            await asyncio.sleep(1.0)
            if not self._stopping:
                self._spawn(self._reconcile(link))
            return
        with self.db.session() as session:
            report = reconcile(session, link.node.name, channels.keys(), self.now(), following=link.calls)
            plans = {aid: self._resume_info(session, aid) for aid in report.alive + report.hang_up}
        log.info("reconciled %s: %s", link.node.name, report.summary())
        for attempt_id in report.hang_up:
            with contextlib.suppress(AriError):
                await link.ari.hangup(attempt_id)
        for attempt_id, info in plans.items():
            if info is not None:
                claimed, plan = info
                link.calls.add(attempt_id)
                self._spawn(self._call(link, plan, claimed, resume=channels[attempt_id]))
        for attempt_id in report.closed:
            await self._publish(
                CallEvent(call_id=attempt_id, kind="reconciled", detail={"outcome": "interrupted"})
            )
        link.ready = True

    def _resume_info(self, session: Any, attempt_id: str) -> tuple[Claimed, CallPlan] | None:
        from dialer.models import Attempt

        attempt = session.get(Attempt, attempt_id)
        if attempt is None:
            return None
        contact = session.get(Contact, attempt.contact_id)
        campaign = session.get(Campaign, attempt.campaign_id)
        if contact is None or campaign is None:
            return None
        state = self._campaign_state(campaign)
        link = self.nodes[attempt.node]
        claimed = Claimed(
            attempt.id,
            attempt.attempt_no,
            campaign.id,
            campaign.name,
            contact.id,
            contact.phone_e164,
            contact.name,
            dict(contact.fields or {}),
        )
        return claimed, self._plan(link, campaign, state, contact.phone_e164)

    # ------------------------------------------------------------ campaigns

    def _campaign_state(self, campaign: Campaign) -> CampaignState:
        key = (campaign.updated_at, campaign.flow, campaign.calls_per_second)
        state = self.campaigns.get(campaign.id)
        if state is not None and state.plan_key == key:
            return state
        spec = spec_of(campaign)
        flow: Flow | None = None
        error = None
        if campaign.flow:
            path = find_flow(self.settings, campaign.flow)
            if path is None:
                error = f"flow {campaign.flow!r} not found in {', '.join(map(str, flow_dirs(self.settings)))}"
            else:
                try:
                    flow = load_flow(path)
                except Exception as exc:
                    error = f"flow {path}: {exc}"
        if error:
            log.error("campaign %s cannot dial: %s", campaign.name, error)
        bucket = TokenBucket(campaign.calls_per_second, clock=self.monotonic)
        if state is not None and state.bucket.rate == campaign.calls_per_second:
            bucket = state.bucket
        state = CampaignState(spec, key, flow, bucket, error)
        self.campaigns[campaign.id] = state
        return state

    def _plan(self, link: NodeLink, campaign: Campaign, state: CampaignState, e164: str) -> CallPlan:
        return CallPlan(
            campaign=campaign.name,
            endpoint=endpoint_for(link.node.dial_template, e164),
            app=link.node.app,
            amd_policy=campaign.amd,
            flow=state.flow,
            caller_id=campaign.caller_id,
            ring_timeout=self.settings.dialer_ring_timeout,
            agent_campaign=campaign.kind is CampaignKind.agent,
        )

    def _pick_node(self) -> NodeLink | None:
        now = self.monotonic()
        best: NodeLink | None = None
        for link in self.nodes.values():
            if not link.ready or link.down_until > now:
                continue
            if best is None or link.node.max_channels - len(link.calls) > best.node.max_channels - len(
                best.calls
            ):
                best = link
        return best

    async def tick(self) -> int:
        """One pass over running campaigns; returns how many calls it started."""
        started = 0
        with self.db.session() as session:
            stmt = select(Campaign).where(Campaign.status == CampaignStatus.running)
            running = [c for c in session.scalars(stmt) if self.only is None or c.name in self.only]
        running.sort(key=lambda c: -c.priority)
        for campaign in running:
            state = self._campaign_state(campaign)
            if state.error:
                continue
            link = self._pick_node()
            if link is None:
                break
            free_on_node = link.node.max_channels - len(link.calls)
            try:
                with self.db.session() as session:
                    active = active_attempts(session, campaign.id)
                    n = min(
                        calls_allowed(Capacity(campaign.max_channels, active), state.bucket), free_on_node
                    )
                    if n <= 0:
                        continue
                    claimed = claim(session, campaign, n, self.now(), node=link.node.name, spec=state.spec)
            except OperationalError as exc:  # SQLite busy with another writer: next pass
                log.info("claim for %s deferred: %s", campaign.name, exc)
                continue
            if claimed:
                state.bucket.take(len(claimed))
            for c in claimed:
                link.calls.add(c.attempt_id)  # before any await: reconciliation must see it as ours
                self._spawn(self._call(link, self._plan(link, campaign, state, c.phone_e164), c))
                started += 1
        return started

    # ------------------------------------------------------------ one call

    async def _call(self, link: NodeLink, plan: CallPlan, c: Claimed, *, resume: JSON | None = None) -> None:
        masked = mask(c.phone_e164)
        base = {"phone": masked, "attempt": c.attempt_no}

        async def notify(kind: str, detail: dict[str, Any]) -> None:
            if kind in ("originated", "answered"):
                state = AttemptState.dialing if kind == "originated" else AttemptState.answered
                with self.db.session() as session:
                    mark(session, c.attempt_id, state, self.now())
            await self._publish(
                CallEvent(call_id=c.attempt_id, campaign=c.campaign, kind=kind, detail={**base, **detail})
            )

        report = CallReport()
        try:
            call = Call(
                link.ari,
                link.dispatcher,
                link.runner,
                plan,
                c.attempt_id,
                c.fields | _contact_fields(c),
                notify,
                resume=resume,
                services={"db": self.db, "settings": self.settings},  # agent routing uses ours
            )
            report = await call.run()
        except asyncio.CancelledError:
            link.calls.discard(c.attempt_id)  # shutting down: left live for reconciliation
            raise
        try:
            outcome = self._close(c, report)
        finally:
            link.calls.discard(c.attempt_id)
        if report.not_dialled:
            link.down_until = self.monotonic() + 2.0
        if outcome is not None:
            self.closed_calls += 1
            for hook in self.on_closed:
                hook(c, outcome)
            await self._publish(
                CallEvent(
                    call_id=c.attempt_id,
                    campaign=c.campaign,
                    kind="outcome",
                    detail={**base, "outcome": outcome},
                )
            )

    def _close(self, c: Claimed, report: CallReport) -> str | None:
        detail = dict(report.detail)
        if report.originate_error:
            detail["originate_error"] = report.originate_error[:300]
        if report.amd_cause:
            detail["amd_cause"] = report.amd_cause
        override: Outcome | None = None
        if report.interrupted:
            override = Outcome.interrupted
        elif report.originate_error or ("error" in detail and not report.answered):
            override = Outcome.failed
        for _ in range(5):
            try:
                with self.db.session() as session:
                    if report.not_dialled:
                        # Asterisk was unreachable: nothing was dialled, so nothing is counted.
                        from dialer.models import Attempt, ContactState

                        attempt = session.get(Attempt, c.attempt_id)
                        contact = session.get(Contact, c.contact_id)
                        if attempt is not None and attempt.state is AttemptState.created:
                            session.delete(attempt)
                            if contact is not None and contact.state.value == "in_progress":
                                contact.state = ContactState.pending
                        return None
                    closed = close(
                        session,
                        c.attempt_id,
                        report.facts,
                        self.now(),
                        outcome=override,
                        digits=report.digits,
                        detail=detail,
                        escalate=report.escalate,
                    )
                return closed.outcome if closed is not None else None
            except OperationalError as exc:
                log.warning("closing attempt %s: %s; retrying", c.attempt_id, exc)
                time.sleep(0.2)
        log.error("attempt %s could not be closed; reconciliation will", c.attempt_id)
        return None

    # ------------------------------------------------------------ bus and figures

    async def _publish(self, message: BusMessage) -> None:
        if self.bus is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.bus.publish(message)

    async def publish_stats(self) -> None:
        with self.db.session() as session:
            stmt = select(Campaign).where(Campaign.status != CampaignStatus.draft)
            figures = {c.name: campaign_figures(session, c, self.now()) for c in session.scalars(stmt)}
        for name, fig in figures.items():
            with contextlib.suppress(ValueError):
                await self._publish(CampaignStats(campaign=name, figures=fig))

    # ------------------------------------------------------------ the loop

    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Run until cancelled (or until `until()` says so, checked after each pass)."""
        await self.start()
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    log.exception("dialer pass failed")
                if (
                    self.bus is not None
                    and self.monotonic() - self._stats_at >= self.settings.dialer_stats_every
                ):
                    self._stats_at = self.monotonic()
                    self._spawn(self.publish_stats())
                if until is not None and until():
                    break
                await asyncio.sleep(self.settings.dialer_tick)
        finally:
            await self.stop()

    async def stop(self) -> None:
        self._stopping = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for link in self.nodes.values():
            if link.pump is not None:
                link.pump.cancel()
                with contextlib.suppress(BaseException):
                    await link.pump
            await link.ari.aclose()

    def idle(self) -> bool:
        return not any(link.calls for link in self.nodes.values())


def _contact_fields(c: Claimed) -> dict[str, str]:
    return {"name": c.name or ""} if c.name else {}


async def run_worker(settings: Settings, db: Database, *, bus: Bus | None = None) -> None:
    """`warmline dialer run` and the service's background worker."""
    worker = DialerWorker(settings, db, bus=bus)
    await worker.run()
