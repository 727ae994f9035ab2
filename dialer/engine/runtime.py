"""The dialer worker: one ARI event stream per Asterisk node, and the loop over running campaigns.

Each pass (every `dialer_tick` seconds): for every running campaign, the number of calls it may
start now is the smallest of its free channels (max_channels − live attempts), its calls-per-second
tokens, the chosen node's free channels and -- for a progressive or predictive campaign -- what
its pacer says (dialer.engine.pacing: agents free and busy, calls in flight, the abandon budget
left in the campaign's window, inbound callers waiting for the same agents); that many due
contacts are claimed (attempts committed first), then each is originated as its own task. When a
call ends, its attempt and contact are closed in one transaction and the outcome goes onto the
bus. Campaign figures are published (retained) every `dialer_stats_every` seconds.

Clocks are injected: `now()` (UTC, for due times and retries) and `monotonic()` (for pacing), so
tests drive time themselves. One worker dials on an Asterisk node at a time, held by a lease in the
database (`dialer.engine.lease`); each worker follows its own calls through a Stasis app of its own
(`dialer.engine.takeover`), so the next holder leaves a live worker's calls to it and adopts a dead
one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from agents.handover import CallOrigin, Handover, HandoverDeps
from agents.handover.nailed import NailedAgents, NailedDeps
from agents.handover.service import PROCESS_QUEUES as HANDOVER_QUEUES
from agents.placed_calls import PlacedCall, PlacedCallResult
from core.ami import AmiClient
from core.ari import CONNECTED, RECONNECTED, AriClient, AriError
from core.ari_events import UNUSED_EVENTS, EventDispatcher
from core.bus import Bus
from core.db import Database, utcnow
from core.features import ServiceContext, StasisContext, StasisHandler
from core.messages import BusMessage, CallEvent, CampaignPacing, CampaignStats, ServiceHealth
from core.phones import mask
from core.settings import AsteriskNode, Settings
from dialer import wake
from dialer.agent_dial.runner import (
    PlacedClaim,
    anyone_asked,
    close_placed,
    kept_callbacks,
    placed_request,
    take_requests,
)
from dialer.agent_dial.service import asked_count
from dialer.agent_dial.transfer_gate import number_gate
from dialer.campaigns import CampaignSpec, spec_of
from dialer.engine.calls import Call, CallPlan, CallReport, endpoint_for
from dialer.engine.faults import DatabaseWatch, FaultBoard, HeldBackAlerts, probe_database
from dialer.engine.journal import OutcomeJournal, Rejected, is_outage
from dialer.engine.lease import Leases, new_holder
from dialer.engine.ledger import (
    LIVE_STATES,
    Claimed,
    Closing,
    active_attempts,
    claim,
    close_all,
    forget_undialled,
    mark,
    mark_all,
    took_call,
)
from dialer.engine.nailing import NailKeeper
from dialer.engine.originate import StrayWatch, hang_up_stray
from dialer.engine.pacing import PaceTrack, apology_text, is_paced, read_facts, shown_changed
from dialer.engine.pressure import Pressure, instrument
from dialer.engine.takeover import (
    APP_VARIABLE,
    RECHECK,
    Followed,
    alive_apps,
    beat,
    channel_apps,
    dead_look,
    quiet,
    read_beat,
    shared_channels,
    until_replaced,
    worker_app,
)
from dialer.models import (
    Attempt,
    AttemptState,
    Campaign,
    CampaignKind,
    CampaignMode,
    CampaignStatus,
    Contact,
    ContactState,
)
from dialer.outcomes import CallFacts, Outcome, classify
from dialer.pacing import Capacity, DialResult, TokenBucket, calls_allowed
from dialer.reconcile import ReconcileReport, reconcile
from dialer.scripts import pop_fields
from dialer.stats import campaign_figures
from dialer.welfare import events as welfare_events
from ivr.check import find_flow, flow_dirs, load_flow
from ivr.flow import Flow
from ivr.runner import FlowRunner
from ivr.survey import SURVEY_FLOW, save_score, survey_flow
from ivr.tts import PromptCache

log = logging.getLogger(__name__)
PACING_BUS_FIELDS = (
    "abandon_rate",
    "abandon_limit",
    "window_hours",
    "live_answers",
    "abandoned",
    "occupancy",
    "agent_wait_s",
    "agents_free",
    "agents_busy",
    "agents_paused",
)

JSON = dict[str, Any]
HEALTH_PROBE_EVERY = 2.0  # seconds between probes of a database believed up
BOARD_EVERY = 5.0  # seconds between rewrites of var/dialer/faults.json (and at every change)
DRAINED_RECHECK = 1.0  # seconds before a campaign whose due contacts ran out is looked at again
# A campaign paced by its calls per second alone claims this many seconds' worth of calls at once
# (at most its bucket's burst): one claim's transaction serves several calls, not one or two a pass.
CLAIM_SPAN = 0.5
# The running campaigns are read when a claim is due (or a paced campaign runs: its pacer decides
# each pass), when an agent in this process asked for a call, and at least this often otherwise
# (a campaign started, agents' requests stored by another process).
RUNNING_RECHECK = 1.0
# A pass runs when something it serves is due (`_due_in`) or arrives (`_wake_pass`: an outcome
# journalled, an agent's request, a campaign started here, a node ready), never sooner than
# dialer_tick after the last one began (calls ending together share one transaction), and at least
# this often otherwise (the running campaigns' read, the database probe). A worker with nothing
# due sleeps between passes, where it ran one every dialer_tick (issue 13, Round 8).
PASS_IDLE = 1.0
# The pass's read, built once (issue 13, Round 7). A preview campaign's contacts are called by
# agents (dialer.agent_dial), never by the dialer.
# With each campaign, whether it has a due contact now (ix_contacts_due): the claim's own candidate
# condition, so a campaign with none needs no claim's transaction to find that out.
_HAS_DUE = (
    select(Contact.id)
    .where(
        Contact.campaign_id == Campaign.id,
        Contact.state == ContactState.pending,
        Contact.next_due_at.is_(None)
        | (Contact.next_due_at <= bindparam("b_now", type_=Contact.next_due_at.type)),
    )
    .exists()
)
# Only the id and the settings' version (updated_at: every settings or status change moves it; the
# pacer's live figures deliberately do not, and the worker keeps those in memory): the whole row,
# JSON and all, is read again only when it moved (`_running_campaigns`, issue 13, Round 8).
_RUNNING = select(Campaign.id, Campaign.updated_at, _HAS_DUE.label("has_due")).where(
    Campaign.status == CampaignStatus.running, Campaign.mode != CampaignMode.preview
)
_RUNNING_ONLY = _RUNNING.where(Campaign.name.in_(bindparam("b_names", expanding=True)))
_CAMPAIGN_ROWS = select(Campaign).where(Campaign.id.in_(bindparam("b_ids", expanding=True)))
AriFactory = Callable[[AsteriskNode, Settings], AriClient]
AmiFactory = Callable[[AsteriskNode, Settings], AmiClient | None]


@dataclass
class NodeLink:
    """One Asterisk node as the worker sees it."""

    node: AsteriskNode
    ari: AriClient
    dispatcher: EventDispatcher
    runner: FlowRunner
    handover: Handover
    ready: bool = False  # connected and reconciled: calls may be placed
    calls: set[str] = field(default_factory=set)
    down_until: float = 0.0
    connections: int = 0  # ARI (re)connections seen: the calls' epoch (Asterisk may have restarted)
    pump: asyncio.Task[None] | None = None  # this worker's own app's events, from the first lease on
    shared: asyncio.Task[None] | None = None  # the node's shared app's events, while the lease is held
    # Dead workers' apps whose calls this worker adopted: their events (dialer.engine.takeover).
    adopted: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # Live foreign workers' apps -> their attempts, left to them while they live.
    foreign: dict[str, set[str]] = field(default_factory=dict)
    beat: asyncio.Task[Any] | None = None
    adopted_beats: dict[str, asyncio.Task[Any]] = field(default_factory=dict)  # their heartbeats, ours now
    followed: Followed = field(default_factory=Followed)  # the calls followed, by the app they come through
    bookkeeping: asyncio.Lock = field(default_factory=asyncio.Lock)  # claims vs reconciliation
    strays: StrayWatch = field(default_factory=StrayWatch)  # channels nobody may follow: hung up
    pressure: Pressure = field(default_factory=Pressure)  # ARI's answer time: how many may start
    keeper: NailKeeper | None = None  # settings.dialer_nailed_agents: agents kept on the line


@dataclass
class CampaignState:
    spec: CampaignSpec
    plan_key: tuple[Any, ...]
    flow: Flow | None
    bucket: TokenBucket
    error: str | None = None
    pace: PaceTrack | None = None  # progressive and predictive campaigns: their pacer and calls
    apology: str | None = None  # what a live answer with no agent within the grace hears
    apology_ready: bool = False  # its prompt made (or being made) in the cache
    drained_until: float = -1e18  # its last claim found fewer due contacts than it could call
    has_due: bool = True  # the last read of the running campaigns found a due contact
    survey: Flow | None = None  # the post-call survey flow, when the campaign asks for it


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
        stasis: Mapping[str, StasisHandler] | None = None,
        ari_factory: AriFactory | None = None,
        ami_factory: AmiFactory | None = None,
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
        self.stasis = dict(stasis or {})  # first Stasis argument -> handler (inbound calls)
        self.ari_factory = ari_factory or _real_ari
        # The node's AMI (a nailed call's MixMonitor): a fake Asterisk has none unless given one.
        self.ami_factory = ami_factory or (AmiClient.for_node if ari_factory is None else _no_ami)
        self.closed_calls = 0
        lease_seconds = settings.dialer_lease_seconds
        # This worker's name: its Stasis app's suffix and the last part of its lease holder's.
        self.tag = uuid.uuid4().hex[:8]
        self.leases = (
            Leases(db, lease_seconds, now=now, holder=new_holder(self.tag)) if lease_seconds > 0 else None
        )
        self._stats_at = 0.0
        self._nailed_at = -1e9
        self._stopping = False
        # Faults (dialer.engine.faults, dialer.engine.journal): every outcome is journalled before
        # the database write; while the database is down no new call starts, live ones go on.
        self.journal = OutcomeJournal(settings.var_dir / "dialer")
        self.watch = DatabaseWatch(
            probe=lambda: probe_database(db), monotonic=monotonic, on_change=self._db_changed
        )
        self.board = FaultBoard(
            settings.var_dir / "dialer" / "faults.json",
            self.watch,
            bus_connected=lambda: None if self.bus is None else self.bus.connected,
            extra=self._fault_counters,
            ari=self._ari_faults,
            now=now,
        )
        self.held_alerts = HeldBackAlerts(db)  # supervisors' alert while a slow ARI holds calls back
        self._ari_seen: dict[str, bool] = {}  # node -> degraded, at the last board write
        self._replaying: asyncio.Task[Any] | None = None
        self._inflight: set[str] = set()  # outcomes being written by their own call right now
        self._notes: dict[str, asyncio.Task[Any]] = {}  # each live call's last ledger note
        # Calls' progress (dialing, answered) waits here for the pass's one commit, not one each.
        self._progress: dict[str, tuple[AttemptState, datetime]] = {}
        self._progress_writing: tuple[set[str], asyncio.Task[Any]] | None = None
        # Calls' outcomes, journalled, wait here for the pass's one transaction (`_flush_closes`).
        self._to_close: list[tuple[dict[str, Any], asyncio.Future[str | None]]] = []
        self._closes_writing: asyncio.Task[Any] | None = None
        # Outcomes waiting for the journal's next write (`_journalled`): one fsync for all the
        # calls that ended while the previous write was on its way to disk.
        self._to_journal: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._journal_writing: asyncio.Task[Any] | None = None
        self._passing = False  # run()'s loop is on: it flushes the closes once a pass
        self._board_at = -1e18
        self._health_sent: bool | None = None
        self._running: list[CampaignState] = []  # the running campaigns at the last read
        self._running_at = -1e18  # when they were read (monotonic)
        self._asked_seen = 0  # agent_dial.service.asked_count() at that read
        self._placed_waiting = False  # agents' requests were waiting at that read
        self._rows: dict[int, Campaign] = {}  # the running campaigns' rows, as of their updated_at
        self._woken: asyncio.Future[None] | None = None  # the loop's rest between passes
        self._wake_due = False  # something arrived for the next pass since this one began

    # ------------------------------------------------------------ nodes

    def _link(self, node: AsteriskNode) -> NodeLink:
        pressure = Pressure(
            slow=self.settings.dialer_ari_slow,
            timeout=self.settings.dialer_ari_timeout,
            max_window=node.max_channels,
            clock=self.monotonic,
        )
        ari = instrument(self.ari_factory(node, self.settings), pressure)
        # The worker's own app: its calls are originated into it and come back to it (WL_APP).
        own = worker_app(node.app, self.tag)
        ari.app = own
        ari.originate_variables = {APP_VARIABLE: own}
        name = node.name
        dispatcher = EventDispatcher(unrouted=lambda e: self._unrouted(name, e))
        prompts = PromptCache.for_settings(self.settings)
        runner = FlowRunner(ari, prompts, recordings_dir=self.settings.recordings_dir)
        nailed = None
        if self.settings.dialer_nailed_agents:
            ami = self.ami_factory(node, self.settings)
            nailed = NailedAgents(
                NailedDeps(ari, dispatcher, self.db, self.settings, publish=self._publish, ami=ami)
            )
        handover = Handover(
            HandoverDeps(ari, dispatcher, self.db, self.settings, nailed=nailed, publish=self._publish)
        )
        keeper = None if nailed is None else NailKeeper(nailed, self.db, self.settings.timezone)
        return NodeLink(node, ari, dispatcher, runner, handover, pressure=pressure, keeper=keeper)

    def _unrouted(self, node: str, event: JSON) -> None:
        kind = event.get("type")
        if kind in (CONNECTED, RECONNECTED):  # the worker's own app's stream (the others are quiet)
            link = self.nodes.get(node)
            if link is not None:
                link.connections += 1
                if self._holding(link):
                    link.ready = False
                    self._spawn(self._reconcile(link))
            return
        link = self.nodes.get(node)
        stray = None if link is None else link.strays.stray(event, following=link.calls, ready=link.ready)
        if link is not None and stray is not None:
            self._spawn(hang_up_stray(link.ari, stray))
        elif kind == "StasisStart":
            self._stasis_start(node, event)

    def _stasis_start(self, node: str, event: JSON) -> None:
        """A call nobody subscribed to entered the app: hand it to the feature that registered
        its first Stasis argument (the hotline for ``inbound``), or leave it alone."""
        args = event.get("args") or []
        handler = self.stasis.get(str(args[0])) if args else None
        channel_id = (event.get("channel") or {}).get("id")
        link = self.nodes.get(node)
        if handler is None or not channel_id or link is None:
            return
        # Subscribe now, synchronously, so no event of this call is missed before the task runs.
        link.dispatcher.subscribe(channel_id)
        service = ServiceContext(self.settings, self.db, self.bus)
        self._spawn(handler(StasisContext(node, link.ari, link.dispatcher, service), event))

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def start(self) -> None:
        for node in self.settings.asterisk_nodes:
            link = self._link(node)
            self.nodes[node.name] = link
            if self.leases is None:
                self._follow(link)
                self._follow_shared(link)
            else:  # dial only while holding the node's lease (dialer/engine/lease.py)
                self._spawn(self._hold(link))

    def _holding(self, link: NodeLink) -> bool:
        return self.leases is None or link.node.name in self.leases.held

    def _follow(self, link: NodeLink) -> None:
        """The worker's own app's events and heartbeat, from now until the worker stops (the
        first connection reconciles)."""
        app = link.ari.app
        events = until_replaced(link.ari.events(), lambda event: self._replaced(link, app))
        link.pump = asyncio.create_task(link.dispatcher.run(events), name=f"ari-{link.node.name}")
        link.beat = self._spawn(beat(link.ari, link.ari.app))

    def _follow_shared(self, link: NodeLink) -> None:
        connected = asyncio.Event()
        events = quiet(link.ari.events(app=link.node.app), connected)
        link.shared = asyncio.create_task(link.dispatcher.run(events), name=f"ari-{link.node.name}-shared")
        self._spawn(self._filter_when(link, link.node.app, connected))

    async def _filter_when(self, link: NodeLink, app: str, connected: asyncio.Event) -> None:
        """Once `app` is connected (registered in Asterisk), it is spared the unused events."""
        await connected.wait()
        with contextlib.suppress(AriError):
            await link.ari.filter_events(UNUSED_EVENTS, app=app)

    async def _hold(self, link: NodeLink) -> None:
        """Wait for the node's lease; while it is ours, follow the node's shared app and dial
        there. Should it be lost, stop dialling and drop the shared app (the new holder leaves
        this worker's calls to it, dialer.engine.takeover), keep following this worker's own calls
        through its own app to their end, and wait for the lease again."""
        assert self.leases is not None
        while not self._stopping:
            await self.leases.wait_for(link.node.name)
            self._board_at = -1e18  # the fault board says who holds the node at the next pass
            self._follow_shared(link)
            if link.pump is None:
                self._follow(link)  # its first connection reconciles
            else:  # taken again: no reconnection, the calls missed nothing; the others' are looked at
                self._spawn(self._reconcile(link))
            await self.leases.keep(link.node.name)
            self._board_at = -1e18
            link.ready = False
            link.foreign.clear()  # the next holder decides about them
            await _cancelled(link.shared)
            link.shared = None

    async def _reconcile(self, link: NodeLink) -> None:
        """Match this node's live attempts with its channels; then the node may dial again. A
        live foreign worker's calls are left to it; a dead one's adopted (dialer.engine.takeover)."""
        for app in (None, link.node.app, *link.adopted):  # (they are forgotten when Asterisk restarts)
            with contextlib.suppress(AriError):
                await link.ari.filter_events(UNUSED_EVENTS, app=app)
        try:
            channels = {c["id"]: c for c in await link.ari.channels()}
            owners = await self._owners(link, channels)
        except (AriError, SQLAlchemyError) as exc:
            if isinstance(exc, SQLAlchemyError):
                self.watch.failed(exc)
            log.warning("reconcile %s: cannot list channels: %s", link.node.name, exc)
            await asyncio.sleep(1.0)
            if not self._stopping:
                self._spawn(self._reconcile(link))
            return

        replayed: list[tuple[dict[str, Any], str]] = []

        def match() -> tuple[ReconcileReport, dict[str, tuple[Claimed, CallPlan] | None]]:
            # Outcomes journalled while the database was away first: reconciliation must not
            # close as "interrupted" a call whose real outcome waits on disk.
            replayed.extend(self._replay_now())
            following = link.calls | self.journal.pending_ids() | self._left_to_others(link)
            with self.db.session() as session:
                report = reconcile(session, link.node.name, channels.keys(), self.now(), following=following)
                return report, {aid: self._resume_info(session, aid) for aid in report.alive + report.hang_up}

        async with link.bookkeeping:
            try:
                report, plans = await asyncio.to_thread(match)
            except SQLAlchemyError as exc:
                self.watch.failed(exc)
                log.warning("reconcile %s: database error, retried: %s", link.node.name, exc)
                await asyncio.sleep(1.0)
                if not self._stopping:
                    self._spawn(self._reconcile(link))
                return
        await self._published_replay(replayed)
        log.info("reconciled %s: %s", link.node.name, report.summary())
        for attempt_id in report.hang_up:
            with contextlib.suppress(AriError):
                await link.ari.hangup(attempt_id)
        for attempt_id, info in plans.items():
            if info is not None:
                claimed, plan = info
                link.calls.add(attempt_id)
                app = owners.get(attempt_id)
                self._spawn(self._call(link, plan, claimed, resume=channels[attempt_id], resume_app=app))
        for attempt_id in report.closed:
            await self._publish(
                CallEvent(call_id=attempt_id, kind="reconciled", detail={"outcome": "interrupted"})
            )
        link.ready = self._holding(link)
        self._wake_pass()  # calls may be placed on it from the next pass

    def _left_to_others(self, link: NodeLink) -> set[str]:
        return set().union(*link.foreign.values()) if link.foreign else set()

    async def _owners(self, link: NodeLink, channels: Mapping[str, JSON]) -> dict[str, str]:
        """Which app follows each live attempt's channel that is not this worker's: the workers'
        apps are sorted first -- a live one's calls are left to it (`link.foreign`, watched), a
        dead one's app is adopted. Returns attempt id -> the app to subscribe when following it."""
        applications = await link.ari.applications()
        by_channel = channel_apps(applications, link.node.app)
        shared = shared_channels(applications, link.node.app)
        live = await asyncio.to_thread(self._live_attempts, link.node.name)
        mine = link.calls | self.journal.pending_ids() | self._left_to_others(link)
        theirs: dict[str, set[str]] = {}
        for attempt_id in (live & channels.keys()) - mine:
            for app in by_channel.get(attempt_id, set()) - {link.ari.app}:
                theirs.setdefault(app, set()).add(attempt_id)
        unknown = theirs.keys() - link.adopted.keys()
        alive = await alive_apps(link.ari, unknown, look=dead_look(self.settings.dialer_ari_timeout))
        for app in unknown:
            if app in alive:
                log.warning("node %s: %d calls left to live worker %s", link.node.name, len(theirs[app]), app)
                link.foreign[app] = theirs[app]
                self._spawn(self._watch_foreign(link, app, alive[app]))
            else:
                await self._adopt_app(link, app)
        owners: dict[str, str] = {}
        for app, attempts in theirs.items():
            if app not in link.foreign:
                owners.update(dict.fromkeys(attempts, app))
        for attempt_id in (live & shared) - owners.keys():
            owners[attempt_id] = link.node.app
        return owners

    def _live_attempts(self, node: str) -> set[str]:
        with self.db.session() as session:
            return set(
                session.scalars(
                    select(Attempt.id).where(Attempt.node == node, Attempt.state.in_(LIVE_STATES))
                )
            )

    async def _adopt_app(self, link: NodeLink, app: str) -> None:
        """A dead worker's app: its events are this worker's from now on (its calls coming back
        from AMD enter it, and are followed here)."""
        if app in link.adopted:
            return
        log.warning("node %s: worker %s is gone; its calls are adopted", link.node.name, app)
        connected = asyncio.Event()
        stream = until_replaced(link.ari.events(app=app), lambda event: self._replaced(link, app))
        events = quiet(stream, connected)
        link.adopted[app] = asyncio.create_task(link.dispatcher.run(events), name=f"ari-{app}")
        # Its heartbeat goes on, now this worker's: a later holder leaves its calls to this one.
        link.adopted_beats[app] = self._spawn(beat(link.ari, app))
        with contextlib.suppress(AriError):
            await link.ari.filter_events(UNUSED_EVENTS, app=app)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await connected.wait()

    async def _watch_foreign(self, link: NodeLink, app: str, seen: str) -> None:
        """A live foreign worker's calls, looked at every few seconds while this worker holds the
        node: once they are all closed, forgotten; once its heartbeat stops, adopted."""
        loop = asyncio.get_running_loop()
        changed_at, look = loop.time(), dead_look(self.settings.dialer_ari_timeout)
        while not self._stopping and self._holding(link) and app in link.foreign:
            await asyncio.sleep(RECHECK)
            now = await read_beat(link.ari, app)
            if now and now != seen:
                seen, changed_at = now, loop.time()
            elif loop.time() - changed_at >= look:  # its heartbeat stopped: it is gone
                if link.foreign.pop(app, None) is not None and self._holding(link):
                    await self._adopt_app(link, app)
                    self._spawn(self._reconcile(link))
                return
            else:
                continue
            try:
                live = await asyncio.to_thread(self._live_attempts, link.node.name)
            except SQLAlchemyError:
                continue
            left = link.foreign.get(app)
            if left is not None:
                left &= live
                if not left:
                    link.foreign.pop(app, None)

    def _replaced(self, link: NodeLink, app: str) -> None:
        """Another worker opened `app` (this worker's own, or one it adopted) and Asterisk gave it
        the app (``ApplicationReplaced``): it took this worker for dead and follows the calls that
        came through the app. They are given up here untouched -- no hang-up, no outcome (the new
        owner closes them); outcomes already journalled stay. Without its own app this worker dials
        nothing on the node until it holds the lease again (`_hold` then opens the app anew)."""
        dropped = link.followed.drop(app)
        link.calls.difference_update(dropped)
        if app == link.ari.app:
            link.ready = False
            link.pump = None  # (ending now, by itself)
            if link.beat is not None:
                link.beat.cancel()
                link.beat = None
        else:
            link.adopted.pop(app, None)
            adopted_beat = link.adopted_beats.pop(app, None)
            if adopted_beat is not None:
                adopted_beat.cancel()
        log.warning(
            "node %s: app %s was taken by another worker (ApplicationReplaced): %d calls left to it "
            "untouched; no new call here until the lease is held again",
            link.node.name,
            app,
            len(dropped),
        )
        for attempt_id in dropped:
            self._spawn(
                self._publish(
                    CallEvent(
                        call_id=attempt_id, kind="taken_over", detail={"app": app, "node": link.node.name}
                    )
                )
            )

    def _resume_info(self, session: Any, attempt_id: str) -> tuple[Claimed, CallPlan] | None:
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
        key = (campaign.updated_at, campaign.flow, campaign.calls_per_second, campaign.mode)
        state = self.campaigns.get(campaign.id)
        if state is not None and state.plan_key == key:
            return state
        spec = spec_of(campaign)
        flow: Flow | None = None
        error = None
        if campaign.flow:
            path = find_flow(self.settings.var_dir, campaign.flow)
            if path is None:
                error = f"flow {campaign.flow!r} not found in {', '.join(map(str, flow_dirs(self.settings.var_dir)))}"
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
        pace = None
        if is_paced(campaign):
            # The pacer learns: it survives a settings change that leaves its mode and limits alone.
            old = state.pace if state is not None else None
            fresh = PaceTrack(spec, campaign.mode)
            same = old is not None and old.mode is fresh.mode and old.config == fresh.config
            pace = old if same else fresh
            if old is not None and pace is fresh:
                fresh.ringing, fresh.waiting = old.ringing, old.waiting
        apology = apology_text(spec) if pace is not None else None
        ready = state is not None and state.apology == apology and state.apology_ready
        state = CampaignState(spec, key, flow, bucket, error, pace, apology, ready)
        state.survey = self._survey_flow(spec.survey_comment_seconds) if spec.survey else None
        self.campaigns[campaign.id] = state
        return state

    def _plan(self, link: NodeLink, campaign: Campaign, state: CampaignState, e164: str) -> CallPlan:
        return CallPlan(
            campaign=campaign.name,
            endpoint=endpoint_for(link.node.dial_template, e164),
            app=link.ari.app,  # the worker's own app (dialer.engine.takeover)
            amd_policy=campaign.amd,
            flow=state.flow,
            caller_id=campaign.caller_id,
            ring_timeout=self.settings.dialer_ring_timeout,
            agent_campaign=campaign.kind is CampaignKind.agent,
            elder_welfare=campaign.elder_welfare,
            skill=campaign.skill,
            language=campaign.language,
            min_level=campaign.min_level,
            pop_fields=tuple(pop_fields(campaign.script, campaign.screen_pop)),
            grace_s=state.spec.pacing.grace_seconds if state.pace is not None else None,
            apology=state.apology,
            survey=state.survey,
        )

    def _survey_flow(self, comment_seconds: int | None) -> Flow | None:
        """The post-call survey flow (config/ivr/post_call_survey.yaml or var/flows'), with the
        recorded comment when the campaign asks for one; missing or broken: the campaign's calls go
        on without the survey, and the log says why."""
        path = find_flow(self.settings.var_dir, SURVEY_FLOW)
        try:
            if path is None:
                raise FileNotFoundError(f"flow {SURVEY_FLOW!r} not found")
            return survey_flow(load_flow(path), comment_seconds)
        except Exception as exc:
            log.error("post-call survey unavailable: %s", exc)
            return None

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

    def _running_campaigns(self) -> tuple[list[tuple[Campaign, CampaignState]], bool]:
        """The running campaigns, best first, and whether agents asked for calls (`_take_placed`):
        the pass's reads in one transaction."""
        with self.db.session() as session:
            now = self.now()
            if self.only is None:
                light = list(session.execute(_RUNNING, {"b_now": now}).all())
            else:  # only these are read (the others' rows are not looked at)
                light = list(
                    session.execute(_RUNNING_ONLY, {"b_now": now, "b_names": sorted(self.only)}).all()
                )
            self._rows = self._fresh_rows(session, light)
            asked = anyone_asked(session)
        rows = [(self._rows[cid], has_due) for cid, _, has_due in light if cid in self._rows]
        rows.sort(key=lambda row: -row[0].priority)
        out = []
        for campaign, has_due in rows:
            state = self._campaign_state(campaign)
            state.has_due = bool(has_due)
            out.append((campaign, state))
        return out, asked

    def _fresh_rows(self, session: Any, light: list[Any]) -> dict[int, Campaign]:
        """The running campaigns' rows: the one kept from an earlier read while its updated_at is
        the same, the whole row read again (in the pass's transaction) when it moved."""
        moved = [cid for cid, at, _ in light if cid not in self._rows or self._rows[cid].updated_at != at]
        fresh = {c.id: c for c in session.scalars(_CAMPAIGN_ROWS, {"b_ids": moved})} if moved else {}
        rows = {cid: self._rows[cid] for cid, _, _ in light if cid in self._rows}
        return rows | fresh

    def _claim(
        self,
        campaign: Campaign,
        state: CampaignState,
        link: NodeLink,
        paced: int | None = None,
        live: dict[str, Any] | None = None,
    ) -> tuple[list[Claimed], dict[str, PlacedClaim], int]:
        """Due contacts claimed, which of them are callbacks kept for their agent (placed as that
        agent's own call: their phone first), and how many were asked for. `paced`: at most this
        many (the pacer's word); `live`: the pacer's figures to store on the campaign."""
        free_on_node = link.node.max_channels - len(link.calls)
        with self.db.session() as session:
            if live is not None:
                # Figures, not settings: updated_at (the settings' version) stays as it is.
                session.execute(
                    update(Campaign)
                    .where(Campaign.id == campaign.id)
                    .values(pacing_live=live, updated_at=Campaign.updated_at)
                )
            active = active_attempts(session, campaign.id)
            n = min(calls_allowed(Capacity(campaign.max_channels, active), state.bucket), free_on_node)
            n = link.pressure.allowance(n)  # ARI slow: fewer new calls (dialer/engine/pressure.py)
            if paced is not None:
                n = min(n, paced)
            if n <= 0:
                return [], {}, 0
            claimed = claim(session, campaign, n, self.now(), node=link.node.name, spec=state.spec)
            return claimed, kept_callbacks(session, claimed), n

    async def tick(self) -> int:
        """One pass over running campaigns; returns how many calls it started. The database work
        runs in a thread: a slow or locked database delays new calls, never live ones."""
        started = 0
        if not self.watch.up:
            return 0  # the database is away: live calls go on, no new one starts
        if not self._reads_due():
            return 0  # no claim due, nothing asked: the pass costs no transaction
        self._running_at, self._asked_seen = self.monotonic(), asked_count()
        try:
            running, placed_asked = await asyncio.to_thread(self._running_campaigns)
        except SQLAlchemyError as exc:
            if self.watch.failed(exc):
                return 0
            raise
        self._running = [state for _, state in running]
        self._placed_waiting = placed_asked
        self._keep_nailed(
            {c.skill for c, st in running if st.pace is not None and st.spec.nailed and not st.error}
        )
        for campaign, state in running:
            if state.error:
                continue
            link = self._pick_node()
            if link is None:
                break
            paced: int | None = None
            live: dict[str, Any] | None = None
            if state.pace is not None:
                try:
                    paced, live = await self._pace(campaign, state)
                except OperationalError as exc:
                    log.info("pacing %s deferred: %s", campaign.name, exc)
                    continue
            if live is None and not self._worth_a_claim(state):
                continue
            if live is None and not state.has_due:
                # The read just now found no due contact: the claim would take none (it looks at
                # the same rows, with the same clock). Looked at again as a drained claim would be.
                state.drained_until = self.monotonic() + DRAINED_RECHECK
                continue
            async with link.bookkeeping:  # reconciliation must see every claimed attempt as ours
                try:
                    claimed, kept, asked = await asyncio.to_thread(
                        self._claim, campaign, state, link, paced, live
                    )
                except OperationalError as exc:  # SQLite busy with another writer: next pass
                    log.info("claim for %s deferred: %s", campaign.name, exc)
                    self.watch.failed(exc)
                    return started
                if claimed:
                    self.watch.succeeded()  # a write worked: no probe needed for a while
                if len(claimed) < asked:
                    state.drained_until = self.monotonic() + DRAINED_RECHECK
                link.calls.update(c.attempt_id for c in claimed)
                if state.pace is not None:
                    if live is not None:
                        state.pace.stored = live
                        self._spawn(self._publish_pacing(campaign.name, state.pace))
                    for c in claimed:
                        if c.attempt_id not in kept:  # a kept callback rings its agent first
                            state.pace.claimed(c.attempt_id, self.monotonic())
            if claimed:
                state.bucket.take(len(claimed))
            for c in claimed:
                if c.attempt_id in kept:
                    self._spawn(self._placed(link, kept[c.attempt_id]))
                else:
                    self._spawn(self._call(link, self._plan(link, campaign, state, c.phone_e164), c))
                started += 1
        if not self.watch.up:
            return started
        return started + (await self._take_placed() if placed_asked else 0)

    def _reads_due(self) -> bool:
        """The pass reads the running campaigns only when it may act on them: a claim is due (or a
        paced campaign's pacer decides), agents' requests wait or one was stored in this process,
        or RUNNING_RECHECK passed since the last read. A claim always follows a fresh read, so a
        campaign paused meanwhile starts no call."""
        if self._placed_waiting or asked_count() != self._asked_seen:
            return True
        if self.monotonic() - self._running_at >= RUNNING_RECHECK:
            return True
        return any(
            state.pace is not None or (not state.error and self._worth_a_claim(state))
            for state in self._running
        )

    def _worth_a_claim(self, state: CampaignState) -> bool:
        """A claim's transaction may start calls: CLAIM_SPAN's worth of tokens is free (one, for a
        paced campaign or a slow one) and the campaign had due
        contacts when last looked at (one drained is looked at again after DRAINED_RECHECK: a list
        imported meanwhile waits that long, a pass costs no transaction for nothing)."""
        return state.bucket.available >= _claim_batch(state) and self.monotonic() >= state.drained_until

    def _keep_nailed(self, skills: set[str | None]) -> None:
        """Agents kept on the line (dialer/engine/nailing.py), once a second, on a ready node."""
        if not skills or self.monotonic() - self._nailed_at < 1.0:
            return
        link = self._pick_node()
        if link is None or link.keeper is None:
            return
        self._nailed_at = self.monotonic()
        self._spawn(link.keeper.keep(skills, self.now()))

    # ------------------------------------------------------------ pacing

    async def _pace(self, campaign: Campaign, state: CampaignState) -> tuple[int, dict[str, Any] | None]:
        """Ask the campaign's pacer how many calls to start; the figures to store when they changed."""
        pace = state.pace
        assert pace is not None
        if not state.apology_ready and state.apology:
            state.apology_ready = True
            self._spawn(self._prepare_apology(state.apology))

        def read() -> Any:
            with self.db.session() as session:
                return read_facts(session, campaign, pace.config, self.now(), self.settings.timezone)

        facts = await asyncio.to_thread(read)
        inbound = HANDOVER_QUEUES.inbound_waiting(campaign.skill)
        mine = frozenset(a.agent for a in facts.agents)
        spoken_for = sum(
            other.pace.in_flight
            for cid, other in self.campaigns.items()
            if cid != campaign.id and other.pace is not None and other.pace.agent_names & mine
        )
        decision = pace.decide(self.monotonic(), facts, inbound, spoken_for)
        log.debug("pacing %s: %s (%s)", campaign.name, decision.calls_to_start, decision.reason_code)
        live = dict(pace.live)
        changed = shown_changed(pace.stored, live)
        if changed:
            live["at"] = self.now().isoformat()
        return decision.calls_to_start, live if changed else None

    async def _publish_pacing(self, name: str, pace: PaceTrack) -> None:
        """The pacer's reason and figures on the bus (retained), when they changed."""
        live, decision = pace.live, pace.decision
        if self.bus is None or decision is None:
            return
        try:
            message = CampaignPacing(
                campaign=name,
                reason=decision.reason_code,
                params=dict(decision.reason_params),
                reason_text=decision.reason_text(),
                calls=decision.calls_to_start,
                **{k: live[k] for k in PACING_BUS_FIELDS if live.get(k) is not None},
            )
        except ValueError as exc:
            log.info("pacing of %s not published: %s", name, exc)
            return
        await self._publish(message)

    async def _prepare_apology(self, text: str) -> None:
        """Make the apology's prompt now, so a live answer with no agent hears it at once."""
        for link in self.nodes.values():
            try:
                await link.runner.prompts.speak(text)
            except Exception as exc:
                log.warning("the apology prompt could not be made: %s", exc)
            return

    def _pace_of(self, campaign_id: int) -> PaceTrack | None:
        state = self.campaigns.get(campaign_id)
        return state.pace if state is not None else None

    # ------------------------------------------------------------ calls agents asked for

    async def _take_placed(self) -> int:
        """Place the calls agents asked for (dialer.agent_dial): the agent's phone first."""
        link = self._pick_node()
        if link is None:
            return 0

        def take() -> list[PlacedClaim]:
            with self.db.session() as session:
                return take_requests(session, link.node.name, self.now())

        async with link.bookkeeping:  # reconciliation must see every taken attempt as ours
            try:
                claims = await asyncio.to_thread(take)
            except OperationalError as exc:
                log.info("taking agents' calls deferred: %s", exc)
                return 0
            link.calls.update(c.attempt_id for c in claims)
        for placed in claims:
            self._spawn(self._placed(link, placed))
        return len(claims)

    async def _placed(self, link: NodeLink, placed: PlacedClaim) -> None:
        base = {"phone": mask(placed.phone_e164), "agent": placed.agent, "placed": placed.kind}

        async def progress(what: str) -> None:
            if what in ("originated", "answered"):
                await self._mark(placed.attempt_id, what)
            await self._publish(
                CallEvent(call_id=placed.attempt_id, campaign=placed.campaign, kind=what, detail=base)
            )

        async def took(agent: str) -> None:  # a transfer handed the call to a colleague
            await self._took(placed.attempt_id, agent)

        gate = number_gate(
            self.db, link.node, placed.campaign_id, region=self.settings.default_region, now=self.now
        )
        request = placed_request(placed, link.node, self.settings, progress, on_agent=took, number_gate=gate)
        try:
            result = await PlacedCall(link.handover.deps, request).run()
        except asyncio.CancelledError:
            link.calls.discard(placed.attempt_id)  # shutting down: left live for reconciliation
            raise
        try:
            outcome = await self._close_placed(placed, result)
        finally:
            link.calls.discard(placed.attempt_id)
        if result.outcome == "not_placed" and not result.far_end_dialled:
            link.down_until = self.monotonic() + 2.0
        if outcome is not None:
            self.closed_calls += 1
        await self._publish(
            CallEvent(
                call_id=placed.attempt_id,
                campaign=placed.campaign,
                kind="outcome",
                detail={**base, "outcome": outcome or result.outcome},
            )
        )

    async def _close_placed(self, placed: PlacedClaim, result: PlacedCallResult) -> str | None:
        def write() -> str | None:
            with self.db.session() as session:
                closed = close_placed(session, placed, result, self.now())
            if closed is not None and closed.alerts:
                welfare_events.wake()
            return closed.outcome if closed is not None else None

        for delay in (0.2, 0.5, 1.0, 2.0, 4.0):
            try:
                return await asyncio.to_thread(write)
            except OperationalError as exc:
                log.warning("closing placed call %s: %s; retrying in %.1f s", placed.attempt_id, exc, delay)
                await asyncio.sleep(delay)
        log.error("placed call %s could not be closed; reconciliation will", placed.attempt_id)
        return None

    # ------------------------------------------------------------ one call

    async def _call(
        self,
        link: NodeLink,
        plan: CallPlan,
        c: Claimed,
        *,
        resume: JSON | None = None,
        resume_app: str | None = None,
    ) -> None:
        masked = mask(c.phone_e164)
        base = {"phone": masked, "attempt": c.attempt_no}

        async def notify(kind: str, detail: dict[str, Any]) -> None:
            pace = self._pace_of(c.campaign_id)
            if pace is not None and kind == "amd":
                status = detail.get("status")
                result = (
                    DialResult.machine
                    if status == "MACHINE"
                    else DialResult.no_answer
                    if status == "HANGUP"
                    else DialResult.live
                )
                pace.resolved(c.attempt_id, self.monotonic(), result)
            elif pace is not None and kind == "answered":
                pace.answered(c.attempt_id, self.monotonic())
            elif pace is not None and kind == "agent":
                pace.agent_took(c.attempt_id)
            # The ledger's notes run beside the call, never in its way (a slow database must not
            # delay the answer's way into AMD); the close writes what they would have.
            if kind in ("originated", "answered"):
                self._progress_note(c.attempt_id, kind)
            elif kind == "agent":
                self._note(c.attempt_id, self._took(c.attempt_id, str(detail["agent"])))
            elif kind == "survey":
                self._note(c.attempt_id, self._scored(c, detail))
            if self.bus is not None:  # no bus (a bench, the demo): no message to build
                await self._publish(
                    CallEvent(call_id=c.attempt_id, campaign=c.campaign, kind=kind, detail={**base, **detail})
                )

        report = CallReport()
        task = asyncio.current_task()
        if task is not None:  # the app its events come through: given up should another worker take it
            link.followed.add(c.attempt_id, resume_app or link.ari.app, task)
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
                resume_app=resume_app,
                handover=link.handover,
                origin=_origin(c, plan, masked),
                epoch=lambda: link.connections,  # a reconnect mid-call means Asterisk may have restarted
                number_gate=number_gate(
                    self.db, link.node, c.campaign_id, region=self.settings.default_region, now=self.now
                ),
                strays=link.strays,
                ari_slow=lambda: link.pressure.is_slow,
            )
            report = await call.run()
            link.followed.ended(c.attempt_id)  # its outcome is written, whoever takes the app now
        except asyncio.CancelledError:
            link.calls.discard(c.attempt_id)  # shutting down: left live for reconciliation
            self._notes.pop(c.attempt_id, None)
            self._progress.pop(c.attempt_id, None)
            raise
        try:
            outcome = await self._close(c, report)
        finally:
            link.calls.discard(c.attempt_id)
            pace = self._pace_of(c.campaign_id)
            if pace is not None:
                if report.not_dialled:
                    pace.forget(c.attempt_id)
                else:
                    pace.ended(c.attempt_id, self.monotonic(), _ended_as(report))
        if report.not_dialled:
            link.down_until = self.monotonic() + 2.0
        if outcome is not None:
            self.closed_calls += 1
        if outcome is not None and self.bus is not None:
            await self._publish(
                CallEvent(
                    call_id=c.attempt_id,
                    campaign=c.campaign,
                    kind="outcome",
                    detail={**base, "outcome": outcome},
                )
            )

    def _note(self, attempt_id: str, note: Awaitable[None]) -> None:
        """Run a ledger note beside the call, after the attempt's earlier notes (their order is the
        call's); `_close` waits for the last one, so a note never lands after the close."""
        before = self._notes.get(attempt_id)

        async def chained() -> None:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            await note

        self._notes[attempt_id] = self._spawn(chained())

    def _progress_note(self, attempt_id: str, kind: str) -> None:
        """Note a call's progress for the pass's batch (`_write_progress`); the later note wins."""
        if not self.watch.up:
            return  # the close writes what it would have
        state = AttemptState.dialing if kind == "originated" else AttemptState.answered
        held = self._progress.get(attempt_id)
        if held is None or held[0] is not AttemptState.answered:
            self._progress[attempt_id] = (state, self.now())

    def _flush_progress(self) -> None:
        """Once a pass: the progress noted since the last one, in one transaction beside the calls."""
        busy = self._progress_writing is not None and not self._progress_writing[1].done()
        if not self._progress or busy or not self.watch.up:
            return
        batch, self._progress = self._progress, {}
        self._progress_writing = (set(batch), self._spawn(self._write_progress(batch)))

    async def _write_progress(self, batch: dict[str, tuple[AttemptState, datetime]]) -> None:
        """A failure is logged, never allowed to end a call: each close writes its own outcome."""

        def write() -> None:
            with self.db.session() as session:
                mark_all(session, batch)  # two guarded UPDATEs for the batch (issue 13, Round 7)

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            log.warning("progress of %d attempts could not be noted: %s", len(batch), exc)

    async def _progress_settled(self, attempt_id: str) -> datetime | None:
        """Before a close: the attempt's progress note is taken off the batch (the close writes it:
        the answer's time is returned) or, already being written, waited for -- a note must never
        land after the close."""
        held = self._progress.pop(attempt_id, None)
        writing = self._progress_writing
        if writing is not None and attempt_id in writing[0]:
            await asyncio.gather(writing[1], return_exceptions=True)
        return held[1] if held is not None and held[0] is AttemptState.answered else None

    async def _mark(self, attempt_id: str, kind: str) -> None:
        """The attempt's progress in the ledger. A failure is logged, never allowed to end the
        call: the attempt is closed with its outcome when the call is over."""
        state = AttemptState.dialing if kind == "originated" else AttemptState.answered
        if not self.watch.up:
            return
        at = self.now()

        def write() -> None:
            with self.db.session() as session:
                mark(session, attempt_id, state, at)

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            log.warning("attempt %s could not be marked %s: %s", attempt_id, state.value, exc)

    async def _took(self, attempt_id: str, agent: str) -> None:
        """Note the agent on the attempt. A failure is logged: the close notes the agent again
        from the call's report."""

        def write() -> None:
            with self.db.session() as session:
                took_call(session, attempt_id, agent)

        if not self.watch.up:
            return
        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            log.warning("attempt %s: agent %s could not be noted: %s", attempt_id, agent, exc)

    async def _scored(self, c: Claimed, detail: Mapping[str, Any]) -> None:
        """Store the callee's survey score (and recorded comment) with the attempt, the agent and
        the campaign."""
        now, score, agent, comment = (
            self.now(),
            int(detail["score"]),
            detail.get("agent"),
            detail.get("comment"),
        )

        def write() -> None:
            with self.db.session() as session:
                save_score(
                    session,
                    call_ref=c.attempt_id,
                    score=score,
                    agent=agent,
                    campaign=c.campaign,
                    comment=comment,
                    now=now,
                )

        try:
            await asyncio.to_thread(write)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            log.warning("attempt %s: survey score %s could not be stored: %s", c.attempt_id, score, exc)

    async def _close(self, c: Claimed, report: CallReport) -> str | None:
        """Journal the outcome (fsynced; calls ending together share one fsync, `_journalled`),
        then write it to the database with the other outcomes of the pass, in one transaction
        (`_flush_closes`). While the database is away the outcome waits in the journal and is
        written when it is back (`_replay`); the call itself was never held up for it. Returns the
        outcome once it is in the database."""
        notes = self._notes.pop(c.attempt_id, None)
        if notes is not None:
            await asyncio.gather(notes, return_exceptions=True)
        answered_at = await self._progress_settled(c.attempt_id)
        entry = _journal_entry(c, report, self.now(), answered_at)
        self._inflight.add(c.attempt_id)
        try:
            try:
                await self._journalled(entry)
            except OSError:
                log.exception("attempt %s: the outcome journal cannot be written", c.attempt_id)
            if not self.watch.up:
                return None  # kept in the journal; replayed when the database is back
            written: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            self._to_close.append((entry, written))
            if not self._passing:  # no pass will come to write it: at once
                self._flush_closes()
            else:  # the pass may be asleep: it writes this batch within dialer_tick
                self._wake_pass()
            return await written
        finally:
            self._inflight.discard(c.attempt_id)

    async def _journalled(self, entry: dict[str, Any]) -> None:
        """Append `entry` to the journal, fsynced, and return once it is on disk. Written at once
        when no write is under way; otherwise with every entry that arrived meanwhile, in the next
        write (one fsync for all: calls claimed together end together). Nothing waits for a pass:
        an outcome is on disk as soon as the disk allows, and always before its transaction."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_journal.append((entry, written))
        if self._journal_writing is None or self._journal_writing.done():
            self._journal_writing = self._spawn(self._write_journal())
        await written

    async def _write_journal(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._to_journal:
                batch, self._to_journal = self._to_journal, []
                try:
                    await asyncio.to_thread(self.journal.append_all, [entry for entry, _ in batch])
                except Exception as exc:  # OSError: each call logs it, as after its own append
                    for _, written in batch:
                        if not written.done():
                            written.set_exception(exc)
                else:
                    for _, written in batch:
                        if not written.done():
                            written.set_result(None)
                batch = []
        except BaseException as exc:  # cancelled (the worker stops): no caller is left waiting
            for _, written in [*batch, *self._to_journal]:
                if written.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    written.cancel()
                else:
                    written.set_exception(exc)
            self._to_journal = []
            raise

    def _flush_closes(self) -> None:
        """Once a pass: the outcomes journalled since the last one into the database, in one
        transaction beside the calls (each is on disk already: a crash before the commit replays it)."""
        busy = self._closes_writing is not None and not self._closes_writing.done()
        if not self._to_close or busy:
            return
        batch, self._to_close = self._to_close, []
        self._closes_writing = self._spawn(self._write_closes(batch))
        # Outcomes journalled while this batch was written wait for the next pass: wake it.
        self._closes_writing.add_done_callback(self._closes_written)

    def _closes_written(self, _task: asyncio.Task[Any]) -> None:
        if self._to_close:
            self._wake_pass()

    async def _write_closes(self, batch: list[tuple[dict[str, Any], asyncio.Future[str | None]]]) -> None:
        entries = [entry for entry, _ in batch]
        outcomes: list[str | None] = [None] * len(batch)
        try:
            if self.watch.up:
                outcomes = await asyncio.to_thread(self._apply_batch, entries)
        except SQLAlchemyError as exc:
            if not self.watch.failed(exc):
                for _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
                return
            log.warning("%d outcomes kept in the journal, database away: %s", len(batch), exc)
        except BaseException as exc:
            for _, written in batch:
                if not written.done():
                    written.set_exception(exc)
            raise
        for (_, written), outcome in zip(batch, outcomes, strict=True):
            if not written.done():
                written.set_result(outcome)

    def _apply_batch(self, entries: list[dict[str, Any]]) -> list[str | None]:
        """Journal entries into the database in one transaction, then marked done together. An
        entry the database refuses for good spoils the transaction: then each is written alone
        (`_apply_done`), so only that one is rejected. An outage is raised: all stay pending."""
        if len(entries) == 1:
            return [self._apply_done(entries[0])]
        try:
            with self.db.session() as session:
                outcomes, alerts = _apply_all(session, entries)
        except Exception as exc:
            if is_outage(exc):
                raise
            return [self._apply_done(entry) for entry in entries]
        if alerts:
            welfare_events.wake()  # committed: announced now, not at the notifier's next poll
        self.journal.done_all([str(e["attempt_id"]) for e in entries])
        self.watch.succeeded()
        return outcomes

    def _apply_done(self, entry: dict[str, Any]) -> str | None:
        """Write one journal entry and mark it done; an entry refused for good is rejected."""
        try:
            outcome = self._apply(entry)
        except Exception as exc:
            if is_outage(exc):
                raise
            self.journal.reject(entry, f"{type(exc).__name__}: {exc}")
            self.journal.done(str(entry["attempt_id"]))
            return None
        self.journal.done(str(entry["attempt_id"]))
        self.watch.succeeded()
        return outcome

    def _apply(self, entry: dict[str, Any]) -> str | None:
        """One journal entry into the database, in one transaction; idempotent by attempt id."""
        with self.db.session() as session:
            [outcome], alerts = _apply_all(session, [entry])
        if alerts:
            welfare_events.wake()  # committed: announced now, not at the notifier's next poll
        return outcome

    def _replay_now(self) -> list[tuple[dict[str, Any], str]]:
        """Replay the journal (blocking: in a thread). Returns what was written, for the bus."""
        written: list[tuple[dict[str, Any], str]] = []

        def apply(entry: dict[str, Any]) -> None:
            outcome = self._apply(entry)
            if outcome is not None:
                written.append((entry, outcome))

        report = self.journal.replay(apply, skip=set(self._inflight))
        if report.applied or report.rejected:
            self.watch.succeeded()
        if report.left:
            log.warning("outcome replay: %d left for the next recovery", report.left)
        return written

    async def _replay(self) -> None:
        try:
            written = await asyncio.to_thread(self._replay_now)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            return
        await self._published_replay(written)

    async def _published_replay(self, written: list[tuple[dict[str, Any], str]]) -> None:
        self._board_at = -1e18  # the fault board says what was replayed at the next pass
        for entry, outcome in written:
            self.closed_calls += 1
            await self._publish(
                CallEvent(
                    call_id=str(entry["attempt_id"]),
                    campaign=entry.get("campaign"),
                    kind="outcome",
                    detail={"attempt": entry.get("attempt_no"), "outcome": outcome, "journal": True},
                )
            )

    def _db_changed(self, up: bool, reason: str) -> None:
        """Called from any thread when the database goes down or comes back."""
        self._board_at = -1e18  # rewrite the fault board at the next pass

    def _fault_counters(self) -> dict[str, Any]:
        bus = self.bus
        return {
            "journal": {
                "pending": len(self.journal.pending_ids()),
                "appended": self.journal.appended,
                "replayed": self.journal.replayed,
                "rejected": self.journal.rejected,
            },
            "bus_outbox": {"pending": bus.pending, "dropped": bus.dropped} if bus is not None else None,
            "live_calls": sum(len(link.calls) for link in self.nodes.values()),
            "lease": None if self.leases is None else self.leases.snapshot(),
        }

    def _ari_faults(self) -> dict[str, dict[str, Any]]:
        return {name: link.pressure.fault() for name, link in self.nodes.items()}

    async def _watch_ari(self) -> None:
        """ARI slow or holding calls back (dialer.engine.pressure): rewrite the board when a node's
        state changes, and raise / resolve the supervisors' held-back alert on the transitions."""
        nodes = self._ari_faults()
        seen = {name: bool(f["degraded"]) or bool(f["holding_back"]) for name, f in nodes.items()}
        if seen != self._ari_seen:
            self._ari_seen = seen
            self._board_at = -1e18
        if not self.watch.up or not self.held_alerts.changes(nodes):
            return
        try:
            raised, resolved = await asyncio.to_thread(self.held_alerts.apply, nodes)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)  # tried again at the next pass
            return
        if raised:
            welfare_events.wake()  # the notifier announces it on the bus (and the webhook)
        for alert_id in resolved:
            await welfare_events.announce_change(self.bus, self.db, alert_id, by="dialer")

    async def _watch_faults(self) -> None:
        """Each pass: probe the database when due (down: every second; up: every few seconds),
        replay the journal on recovery, and publish what is degraded."""
        was_up = self.watch.up
        # Up: probed when neither a probe nor a write worked for HEALTH_PROBE_EVERY (a busy
        # dialer's claims and closes say as much as a probe, a locked database stops them).
        checked = max(self.watch.last_probe, self.watch.last_write)
        if self.watch.due() or (self.watch.up and self.monotonic() - checked >= HEALTH_PROBE_EVERY):
            await self.watch.check_async()
        replay_idle = self._replaying is None or self._replaying.done()
        # Entries being written by their own call right now are not the replay's (it skips them):
        # a pass while calls close must not read the journal for nothing.
        orphaned = self.journal.pending_ids() - self._inflight
        if self.watch.up and replay_idle and (not was_up or orphaned):
            self._replaying = self._spawn(self._replay())
        await self._watch_ari()
        if self.monotonic() - self._board_at >= BOARD_EVERY:
            self._board_at = self.monotonic()
            try:
                state = await asyncio.to_thread(self.board.write)
            except OSError as exc:
                log.warning("dialer faults cannot be written: %s", exc)
                state = self.board.state()
            await self._announce_health(state)

    async def _announce_health(self, state: dict[str, Any]) -> None:
        """The retained ``health/dialer``: ok=False with what is degraded, for supervisors' alerts."""
        if self.bus is None:
            return
        ok = state["status"] == "ok"
        if ok == self._health_sent and ok:
            return
        detail = "ok" if ok else "degraded: " + ", ".join(state["degraded"])
        if not ok and state.get("new_calls_paused"):
            detail += "; new calls paused"
        if not ok and state.get("calls_held_back"):
            detail += "; calls held back (ARI slow)"
        await self._publish(ServiceHealth(component="dialer", ok=ok, detail=detail))
        self._health_sent = ok

    # ------------------------------------------------------------ bus and figures

    async def _publish(self, message: BusMessage) -> None:
        if self.bus is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.bus.publish(message)

    def _figures(self) -> dict[str, Any]:
        with self.db.session() as session:
            stmt = select(Campaign).where(Campaign.status != CampaignStatus.draft)
            return {c.name: campaign_figures(session, c, self.now()) for c in session.scalars(stmt)}

    def ari_figures(self) -> dict[str, int]:
        """ARI's state over this worker's nodes (the slowest node's): answer time, window, held back."""
        out: dict[str, int] = {}
        for link in self.nodes.values():
            for key, value in link.pressure.figures().items():
                out[key] = (
                    value + out.get(key, 0) if key == "ari_held_back" else max(value, out.get(key, value))
                )
        if self.nodes:
            out["ari_window"] = min(link.pressure.figures()["ari_window"] for link in self.nodes.values())
        return out

    async def publish_stats(self) -> None:
        if not self.watch.up:
            return  # the last figures stay retained on the bus; the live page says why
        try:
            figures = await asyncio.to_thread(self._figures)
        except SQLAlchemyError as exc:
            self.watch.failed(exc)
            return
        ari = self.ari_figures()
        for name, fig in figures.items():
            fig = {**fig, **ari}
            with contextlib.suppress(ValueError):
                await self._publish(CampaignStats(campaign=name, figures=fig))

    # ------------------------------------------------------------ the loop

    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Run until cancelled (or until `until()` says so, checked after each pass)."""
        await self.start()
        self._passing = True
        loop = asyncio.get_running_loop()
        unlisten = wake.listen(lambda: _call_soon(loop, self._changed_here))
        try:
            while True:
                started = loop.time()
                self._wake_due = False  # this pass serves what arrived so far
                try:
                    await self._watch_faults()
                    await self.tick()
                    self._flush_progress()
                    self._flush_closes()
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
                await self._rest(started)
        finally:
            unlisten()
            await self.stop()

    def _changed_here(self) -> None:
        """A change committed in this process (dialer.wake): the next pass reads the running
        campaigns, whatever it read a moment ago, and comes at once."""
        self._running_at = -1e18
        self._wake_pass()

    def _wake_pass(self) -> None:
        """Something the pass serves arrived: the loop's rest ends now (the pass itself still
        comes no sooner than dialer_tick after the last one)."""
        self._wake_due = True
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)

    async def _rest(self, started: float) -> None:
        """Between passes: until woken (`_wake_pass`) or something falls due (`_due_in`), and at
        least dialer_tick after the last pass began (`started`, the loop's time)."""
        loop = asyncio.get_running_loop()
        tick = self.settings.dialer_tick
        if not self._wake_due:
            woken: asyncio.Future[None] = loop.create_future()
            self._woken = woken
            timer = loop.call_at(max(started + tick, loop.time() + self._due_in()), _resolve, woken)
            try:
                await woken
            finally:
                timer.cancel()
                self._woken = None
        left = started + tick - loop.time()
        if left > 0:
            await asyncio.sleep(left)

    def _due_in(self) -> float:
        """Seconds until the pass has something to do, at most PASS_IDLE: a paced campaign's
        pacer or agents' requests (at once), a campaign's claim (its tokens, its drained recheck,
        a node free to dial), the running campaigns' read, the fault board, the figures."""
        now = self.monotonic()
        due = [PASS_IDLE, self._running_at + RUNNING_RECHECK - now, self._board_at + BOARD_EVERY - now]
        if self.bus is not None:
            due.append(self._stats_at + self.settings.dialer_stats_every - now)
        if self._placed_waiting:
            return 0.0
        node_in = self._node_free_in(now)
        if self.watch.up and node_in is not None:
            for state in self._running:
                if state.pace is not None:
                    return 0.0  # its pacer decides each pass
                if not state.error:
                    tokens = state.bucket.wait_time(_claim_batch(state))
                    due.append(max(node_in, state.drained_until - now, tokens))
        return max(0.0, min(due))

    def _node_free_in(self, now: float) -> float | None:
        """Seconds until a ready node may dial (0: now); None: none is ready (a node's
        reconciliation wakes the pass when it is done)."""
        waits = [max(0.0, link.down_until - now) for link in self.nodes.values() if link.ready]
        return min(waits, default=None)

    async def stop(self) -> None:
        self._stopping = True
        self._passing = False
        self._flush_progress()  # what the calls noted last (the live ones are reconciled next time)
        if self._progress_writing is not None:
            await asyncio.gather(self._progress_writing[1], return_exceptions=True)
        while self._to_close or (self._closes_writing is not None and not self._closes_writing.done()):
            if self._closes_writing is not None:  # outcomes journalled: into the database first
                await asyncio.gather(self._closes_writing, return_exceptions=True)
            self._flush_closes()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for link in self.nodes.values():
            if link.keeper is not None:
                with contextlib.suppress(Exception):
                    await link.keeper.nailed.close()  # the agents' held legs are hung up
            for pump in (link.pump, link.shared, *link.adopted.values()):
                await _cancelled(pump)
            await link.ari.aclose()
        if self.leases is not None:
            await self.leases.release_all()  # the next worker need not wait for them to run out

    def idle(self) -> bool:
        return not any(link.calls for link in self.nodes.values())


async def _cancelled(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """`callback` on `loop`, from any thread (the loop may be gone: the worker stopped)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _claim_batch(state: CampaignState) -> int:
    """Tokens a campaign waits for before it claims: CLAIM_SPAN's worth of its calls per second
    when nothing else paces it; one for a paced campaign (its pacer decides each pass)."""
    if state.pace is not None:
        return 1
    bucket = state.bucket
    return max(1, min(int(bucket.burst), int(bucket.rate * CLAIM_SPAN)))


def _apply_all(session: Any, entries: list[dict[str, Any]]) -> tuple[list[str | None], bool]:
    """Journal entries in the caller's transaction: each one's outcome written (None: nothing
    new) and whether any raised an alert. The closes go through `close_all` together (one read of
    their rows, one UPDATE of each table); an undialled attempt is forgotten. Raises Rejected for
    an attempt the database does not have."""
    closings = [_closing(e) for e in entries if e.get("kind") != "forget"]
    closed = iter(close_all(session, closings) if closings else [])
    forgets = [e for e in entries if e.get("kind") == "forget"]
    for entry in forgets:  # (an attempt is forgotten or closed, never both: it was dialled or not)
        forget_undialled(session, str(entry["attempt_id"]), int(entry["contact_id"]))
    outcomes: list[str | None] = []
    alerts = False
    for entry in entries:
        if entry.get("kind") == "forget":
            outcomes.append(None)
            continue
        done = next(closed)
        if done is None:
            raise Rejected(f"attempt {entry['attempt_id']} is not in the database")
        outcomes.append(None if done.already else done.outcome)
        alerts = alerts or bool(done.alerts)
    return outcomes, alerts


def _closing(entry: dict[str, Any]) -> Closing:
    """A journal entry's outcome as `close_all` takes it."""
    override = entry.get("outcome")
    answered_at = entry.get("answered_at")
    return Closing(
        attempt_id=str(entry["attempt_id"]),
        facts=CallFacts(**entry["facts"]),
        now=datetime.fromisoformat(entry["at"]),
        outcome=Outcome(override) if override else None,
        digits=entry.get("digits") or None,
        detail=entry.get("detail") or None,
        escalate=bool(entry.get("escalate")),
        answered_at=datetime.fromisoformat(answered_at) if answered_at else None,
    )


def _journal_entry(
    c: Claimed, report: CallReport, now: datetime, answered_at: datetime | None = None
) -> dict[str, Any]:
    """What the database needs to close the attempt, as one JSON object (no phone number)."""
    if report.not_dialled:
        return {
            "kind": "forget",
            "attempt_id": c.attempt_id,
            "contact_id": c.contact_id,
            "at": now.isoformat(),
        }
    override = _override(report)
    f = report.facts
    return {
        "kind": "close",
        "attempt_id": c.attempt_id,
        "attempt_no": c.attempt_no,
        "contact_id": c.contact_id,
        "campaign": c.campaign,
        "at": now.isoformat(),
        "facts": {
            "answered": f.answered,
            "hangup_cause": f.hangup_cause,
            "amd_status": f.amd_status,
            "flow_outcome": f.flow_outcome,
            "message_left": f.message_left,
        },
        "outcome": override.value if override is not None else None,
        "digits": report.digits,
        "detail": _close_detail(report),
        "escalate": report.escalate,
        **({"answered_at": answered_at.isoformat()} if answered_at is not None else {}),
    }


def _override(report: CallReport) -> Outcome | None:
    """An outcome the call's facts alone would not give."""
    if report.flow_outcome == "agent" and report.detail.get("agent_name"):
        return Outcome.agent  # a conversation took place: whatever failed after it, it stays
    if report.interrupted:
        return Outcome.interrupted
    if report.originate_error or ("error" in report.detail and not report.answered):
        return Outcome.failed
    return None


def _ended_as(report: CallReport) -> str:
    """The outcome a call's report gives, for the pacer (the ledger's own may differ by retries)."""
    override = _override(report)
    return (override or classify(report.facts)).value


def _close_detail(report: CallReport) -> dict[str, Any]:
    detail = dict(report.detail)
    if report.originate_error:
        detail["originate_error"] = report.originate_error[:300]
    if report.amd_cause:
        detail["amd_cause"] = report.amd_cause
    return detail


def _origin(c: Claimed, plan: CallPlan, masked: str) -> CallOrigin:
    """What the agent's screen pop and the recording say about this attempt (number masked)."""
    return CallOrigin(
        campaign=c.campaign,
        campaign_id=c.campaign_id,
        elder_welfare=plan.elder_welfare,
        attempt_id=c.attempt_id,
        contact_id=c.contact_id,
        contact_name=c.name,
        phone_masked=masked,
        fields={k: c.fields[k] for k in plan.pop_fields if k != "phone" and c.fields.get(k)},
        preferred_agent=c.assigned_agent,
    )


def _no_ami(node: AsteriskNode, settings: Settings) -> AmiClient | None:
    return None


def _real_ari(node: AsteriskNode, settings: Settings) -> AriClient:
    return AriClient(
        node.ari_url,
        node.ari_user,
        settings.node_ari_password(node),
        node.app,
        timeout=settings.dialer_ari_timeout,
    )


def _contact_fields(c: Claimed) -> dict[str, str]:
    return {"name": c.name or ""} if c.name else {}


async def run_worker(settings: Settings, db: Database, *, bus: Bus | None = None) -> None:
    """`warmline dialer run` and the service's background worker."""
    worker = DialerWorker(settings, db, bus=bus)
    await worker.run()
