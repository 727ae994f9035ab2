"""The agent's phone: engine events become call state, agent state and spoken announcements.

`Softphone` is what both faces drive: the accessible local web UI and headless mode. It owns no
transport of its own; it is given an engine (the real pjsua2 one or a fake), a state publisher and
optionally a server client. Every change a person should know about becomes an `Announcement`
(text for the ARIA live region, its politeness, and the name of a short audio cue).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from core.i18n import N_, _, current_locale
from core.messages import CallQuality
from core.phones import mask_in_text
from softphone.account import SipAccountSettings
from softphone.errors import ActionError as ActionError  # re-exported: the UI and tests import it from here
from softphone.events import (
    CallStateChanged,
    DtmfReceived,
    EngineEvent,
    EngineStopped,
    IncomingCall,
    MediaChanged,
    RegistrationChanged,
    TransferProgress,
)
from softphone.my_day import my_day_view
from softphone.outbox import Delivery
from softphone.placed_calls import PlacedCalls
from softphone.presence import BREAK_REASONS, AgentStatus, StateError
from softphone.privacy import decode_header, screen_fields
from softphone.provisioning import ProvisioningError, ServerClient
from softphone.quality import QUALITY_VERDICTS, QualityReport, StreamSample, assess
from softphone.script_view import clean_script_html
from softphone.transfers import Transfers
from softphone.wellbeing import Wellbeing

log = logging.getLogger(__name__)

Politeness = Literal["polite", "assertive"]
TRANSFER_SETTLE_LOOKS = 8  # looks, half a second apart, for how a transfer that rang us ended
CallStatus = Literal["ringing", "dialing", "connected", "held", "ended"]


@dataclass(frozen=True)
class Disposition:
    """One wrap-up choice: its number key, the code the server stores, its labels, its action."""

    key: str
    code: str
    label_en: str
    action: str
    label: str = ""  # zh-CN

    @property
    def spoken(self) -> str:
        """The label in the phone's language: the Chinese one for zh-CN (the English one when a
        campaign gives no Chinese label), the English one otherwise (the Chinese when there is none)."""
        if current_locale() == "zh_CN":
            return self.label or self.label_en
        return self.label_en or self.label


# The server's defaults (dialer.dispositions.DEFAULT_DISPOSITIONS; a test keeps them aligned): what
# the phone offers when it cannot ask the server for the call's campaign.
DEFAULT_DISPOSITIONS: tuple[Disposition, ...] = (
    Disposition("1", "confirmed", "Reached, confirmed", "done", "已接通，已确认"),
    Disposition("2", "follow_up", "Reached, needs follow-up", "retry_later", "已接通，需再跟进"),
    Disposition("3", "callback", "Callback requested", "callback", "约定回拨"),
    Disposition("4", "wrong_number", "Wrong number", "wrong_number", "号码错误"),
    Disposition("5", "no_answer", "Voicemail or no answer", "retry_later", "语音信箱或无人接听"),
    Disposition("6", "refused", "Refused", "done", "拒绝"),
    Disposition("7", "opt_out", "Opted out: do not call again", "opt_out", "要求不再来电"),
    Disposition(
        "8",
        "welfare_concern",
        "Welfare concern: tell a supervisor",
        "welfare_concern",
        "担心对方安危，报告主管",
    ),
    Disposition("9", "other", "Other", "done", "其他"),
)
DISPOSITIONS: dict[str, str] = {d.key: d.label_en for d in DEFAULT_DISPOSITIONS}
"""The default choices by number key, in English (`Disposition.spoken` says them in the phone's language)."""
HEADLESS_DISPOSITION = "other"  # what a headless phone (no person to choose) saves
QUALITY_EVERY = 15.0
# A call's status as `do_status` says it (the view keeps the codes).
CALL_STATUS_SPOKEN: dict[str, str] = {
    "ringing": N_("ringing"),
    "dialing": N_("dialling"),
    "connected": N_("connected"),
    "held": N_("on hold"),
    "ended": N_("ended"),
}


class EnginePort(Protocol):
    """What the phone needs from an engine (the pjsua2 `Engine` or a fake)."""

    def subscribe(self) -> asyncio.Queue[EngineEvent | None]: ...
    def unsubscribe(self, q: asyncio.Queue[EngineEvent | None]) -> None: ...
    async def register(self, settings: SipAccountSettings) -> str: ...
    async def unregister(self, account: str) -> None: ...
    async def reregister(self, account: str) -> None: ...
    async def make_call(
        self, target: str, *, headers: dict[str, str] | None = None, account: str | None = None
    ) -> int: ...
    async def answer(self, call: int, code: int = 200) -> None: ...
    async def hangup(self, call: int, code: int = 0) -> None: ...
    async def hold(self, call: int) -> None: ...
    async def unhold(self, call: int) -> None: ...
    async def set_mute(self, call: int, muted: bool) -> None: ...
    async def send_dtmf(self, call: int, digits: str) -> None: ...
    async def transfer(self, call: int, target: str) -> None: ...
    async def attended_transfer(self, call: int, to_call: int) -> None: ...
    async def stats(self, call: int) -> StreamSample | None: ...


@dataclass
class Announcement:
    id: int
    text: str
    politeness: Politeness = "polite"
    cue: str = "info"
    at: float = field(default_factory=time.time)


@dataclass
class ScreenPop:
    campaign: str | None = None
    script: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    line: str | None = None  # an inbound call's line

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> ScreenPop | None:
        if not headers:
            return None
        campaign = headers.get("campaign")
        script = headers.get("script")
        line = headers.get("line")
        pop = cls(
            campaign=decode_header(campaign) if campaign else None,
            script=decode_header(script) if script else None,
            fields=screen_fields(headers),
            line=decode_header(line) if line else None,
        )
        return pop if (pop.campaign or pop.script or pop.fields or pop.line) else None

    def spoken(self) -> str:
        parts = []
        if self.campaign:
            parts.append(_("campaign {campaign}", campaign=self.campaign))
        elif self.line:
            parts.append(_("line {line}", line=self.line))
        for name, value in self.fields.items():
            parts.append(_("{name} {value}", name=name, value=value))
        # TRANSLATORS: between the parts of a screen pop said aloud ("campaign w48; 姓名 王奶奶").
        return _("; ").join(parts)


@dataclass
class CallView:
    id: int
    ref: str
    role: Literal["main", "consult"]
    status: CallStatus
    remote: str
    direction: Literal["in", "out"]
    muted: bool = False
    codec: str = ""
    connected_at: float | None = None
    pop: ScreenPop | None = None
    transfer_to: str | None = None
    served: bool = False  # the service rang us with this call (X-Warmline-Attempt): it transfers it
    transfer_id: str | None = None  # a colleague's transfer (or consult) rang us with it
    transfer_from: str | None = None
    # The open line (X-Warmline-Nailed): the service keeps this call up and puts callees through
    # it with no ring; each one's pop comes from the server (softphone.server_pops).
    open_line: bool = False


@dataclass
class CallDesk:
    """The current call's script and form, from the server (asked for while the call rings); kept
    through the wrap-up, so the form can be finished after the call."""

    call_ref: str
    campaign: str | None = None
    line: str | None = None
    loaded: bool = False
    script_html: str | None = None  # checked again here (softphone.script_view)
    missing: list[str] = field(default_factory=list)  # script fields the contact has no value for
    fields: dict[str, str] = field(default_factory=dict)
    form: dict[str, Any] | None = None  # {"title", "record", "questions": [...]}
    answers: dict[str, Any] = field(default_factory=dict)  # as the server last kept them
    errors: dict[str, str] = field(default_factory=dict)  # question key -> why the server refused it
    saved: bool = False  # the complete form is with the server
    case_id: int | None = None


@dataclass
class WrapUp:
    call_ref: str
    remote: str
    talk_seconds: int
    campaign: str | None
    attempt: str | None
    choices: tuple[Disposition, ...] = DEFAULT_DISPOSITIONS


@dataclass
class PhoneOptions:
    auto_answer: bool = False
    auto_wrapup: bool = False  # headless: no person to choose a disposition
    quality_every: float = QUALITY_EVERY


class Softphone:
    def __init__(
        self,
        engine: EnginePort,
        status: AgentStatus,
        *,
        server: ServerClient | None = None,
        options: PhoneOptions | None = None,
        on_wrapup: Callable[[dict[str, Any]], Awaitable[object]] | None = None,
    ) -> None:
        self.engine = engine
        self.status = status
        self.server = server
        self.options = options or PhoneOptions()
        self.on_wrapup = on_wrapup
        self.account: str | None = None
        self.registered = False
        self.registration_text = _("not connected")
        self.calls: dict[int, CallView] = {}
        self.wrapup: WrapUp | None = None
        self.last_quality: QualityReport | None = None
        self.announcements: deque[Announcement] = deque(maxlen=100)
        self.hours_text: str | None = None
        self.my_day: dict[str, Any] | None = None  # My day as shown: facts and the target's progress
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._version = 0
        self._queue: asyncio.Queue[EngineEvent | None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lookups: set[asyncio.Task[None]] = set()  # asking the server while a call rings
        self._quality_sent: dict[int, float] = {}
        self.events_seen: list[EngineEvent] = []
        # Each campaign's wrap-up choices as the server gave them (asked once, when a call rings).
        self.campaign_choices: dict[str, tuple[Disposition, ...]] = {}
        # The calls the agent places: preview, callbacks (softphone.placed_calls).
        self.placed = PlacedCalls(self.announce, self._bump)
        self.placed.server = server
        # Transfers of calls the service put through (softphone.transfers).
        self.transfers = Transfers(self.announce, self._bump, lambda: self.status.agent, lambda: self.server)
        self.desk: CallDesk | None = None
        self._tickets: dict[str, str] = {}  # call_ref -> the call's ticket (never shown on the page)
        # Cool-downs and compliments the server tells of (softphone.wellbeing).
        self.wellbeing = Wellbeing(self.announce, self.in_call)
        self._practice_turn = 0  # F3 takes the server's practice scenarios in turn

    # -- life --------------------------------------------------------------------------------

    async def start(self, sip: SipAccountSettings | None = None) -> None:
        self._queue = self.engine.subscribe()
        self._tasks.append(asyncio.create_task(self._consume(self._queue), name="phone-events"))
        self._tasks.append(asyncio.create_task(self._quality_loop(), name="phone-quality"))
        if sip is not None:
            await self.log_in(sip)

    async def close(self) -> None:
        if self.status.state != "logged_out":
            with contextlib.suppress(StateError):
                await self.status.change("logged_out")
        self.placed.close()
        self.transfers.close()
        for task in self._lookups:
            task.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._queue is not None:
            self.engine.unsubscribe(self._queue)

    async def log_in(self, sip: SipAccountSettings) -> None:
        self.registration_text = _("connecting")
        self.account = await self.engine.register(sip)
        if self.status.state == "logged_out":
            await self.status.change("available")
        self.announce(
            _("Logged in as {agent}. You are {state}.", agent=self.status.agent, state=self.status.spoken()),
            cue="ready",
        )

    # -- announcements and change notification -------------------------------------------------

    def announce(self, text: str, politeness: Politeness = "polite", cue: str = "info") -> Announcement:
        a = Announcement(next(self._ids), text, politeness, cue)
        self.announcements.append(a)
        log.info("announce: %s", text)
        self._bump()
        return a

    def _bump(self) -> None:
        self._version += 1

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(notify())

    async def changes(self) -> AsyncIterator[int]:
        """Yields the view version each time something changed (first at once)."""
        seen = -1
        while True:
            if self._version != seen:
                seen = self._version
                yield seen
                continue
            async with self._changed:
                await self._changed.wait()

    def view(self) -> dict[str, Any]:
        return {
            "version": self._version,
            "agent": self.status.agent,
            "registered": self.registered,
            "registration": self.registration_text,
            "state": self.status.state,
            "state_text": self.status.spoken(),
            "reason": self.status.reason,
            "calls": [self._call_json(c) for c in self.calls.values()],
            "wrapup": self._wrapup_json(),
            "desk": asdict(self.desk) if self.desk else None,
            "dispositions": {
                d.key: [d.code, d.spoken, d.action, d.label]
                for d in (self.wrapup.choices if self.wrapup else DEFAULT_DISPOSITIONS)
            },
            "break_reasons": {code: _(words) for code, words in BREAK_REASONS.items()},
            "hours": self.hours_text,
            "my_day": self.my_day,
            "quality": asdict(self.last_quality) | {"verdict": self.last_quality.verdict}
            if self.last_quality
            else None,
            "announcements": [asdict(a) for a in self.announcements],
            "placed": self.placed.view(),
            "transfer": {**self.transfers.view(), "server": self._served() is not None},
            "cooldown": self.wellbeing.view(),
        }

    def _wrapup_json(self) -> dict[str, Any] | None:
        if self.wrapup is None:
            return None
        data = asdict(self.wrapup)
        del data["choices"]  # sent as "dispositions"
        return data

    @staticmethod
    def _call_json(c: CallView) -> dict[str, Any]:
        data = asdict(c)
        data["pop"] = asdict(c.pop) if c.pop else None
        return data

    # -- engine events -----------------------------------------------------------------------

    async def _consume(self, q: asyncio.Queue[EngineEvent | None]) -> None:
        while (event := await q.get()) is not None:
            self.events_seen.append(event)
            try:
                await self.handle(event)
            except Exception:
                log.exception("phone: event %r not handled", event)

    async def handle(self, event: EngineEvent) -> None:
        if isinstance(event, RegistrationChanged):
            await self._on_registration(event)
        elif isinstance(event, IncomingCall):
            await self._on_incoming(event)
        elif isinstance(event, CallStateChanged):
            await self._on_call_state(event)
        elif isinstance(event, MediaChanged):
            self._on_media(event)
        elif isinstance(event, DtmfReceived):
            self.announce(_("The other side pressed {digit}.", digit=event.digit), cue="dtmf")
        elif isinstance(event, TransferProgress):
            await self._on_transfer(event)
        elif isinstance(event, EngineStopped):
            self.registered = False
            self.registration_text = _("phone stopped")
            self._bump()

    async def _on_registration(self, e: RegistrationChanged) -> None:
        was = self.registered
        self.registered = e.registered
        if e.registered:
            self.registration_text = _("connected")
            if not was:
                self.announce(_("Phone connected to the call centre."), cue="registered")
        else:
            self.registration_text = _("not connected: {reason}", reason=e.reason or e.code)
            if was or e.code >= 300 or e.code == 0 or e.code < 100:
                self.announce(
                    _(
                        "Phone lost its connection to the call centre ({reason}). Retrying.",
                        reason=e.reason or e.code,
                    ),
                    "assertive",
                    cue="error",
                )
        self._bump()

    async def _on_incoming(self, e: IncomingCall) -> None:
        pop = ScreenPop.from_headers(e.headers)
        remote = mask_in_text(e.remote)
        view = CallView(
            id=e.call,
            ref=str(uuid.uuid4()),
            role="main",
            status="ringing",
            remote=remote,
            direction="in",
            pop=pop,
        )
        if e.headers.get("attempt"):
            view.ref = decode_header(e.headers["attempt"])
            view.served = True
        if e.headers.get("transfer-id"):
            view.transfer_id = decode_header(e.headers["transfer-id"])
            view.transfer_from = decode_header(e.headers.get("transfer-from", ""))
        if e.headers.get("nailed"):
            await self._open_line_rings(view)
            return
        placed = await self.placed.rings_placed(e.headers)
        if placed is not None:  # the call the agent asked for: their leg first, answered at once
            view.direction, view.remote = "out", placed.who
        self.calls[e.call] = view
        self._look_up_call(view, e.headers, pop)
        if placed is not None:
            self.announce(_("Dialling {who}; you will hear it ring.", who=placed.who), cue="dialing")
            await self.engine.answer(e.call)
            return
        with contextlib.suppress(Exception):
            await self.engine.answer(e.call, 180)
        text = _("Incoming call from {who}.", who=remote)
        if e.headers.get("transfer-from"):
            text = _("Call handed over by {agent}.", agent=decode_header(e.headers["transfer-from"]))
        if pop is not None and pop.spoken():
            text += _(" {details}.", details=pop.spoken())
        text += _(" Press F2 to answer.")
        self.announce(text, "assertive", cue="ring")
        if self.options.auto_answer:
            await self.engine.answer(e.call)

    def _look_up_call(self, view: CallView, headers: dict[str, str], pop: ScreenPop | None) -> None:
        """Ask the server, while the call rings (or as it is put through), for its script and form
        (with the call's ticket) and its campaign's wrap-up choices."""
        if headers.get("attempt") or headers.get("ticket"):
            if headers.get("ticket"):
                self._tickets[view.ref] = decode_header(headers["ticket"])
            self.desk = CallDesk(
                view.ref, campaign=pop.campaign if pop else None, line=pop.line if pop else None
            )
            self._spawn_lookup(self._load_desk(self.desk), "desk")
        if pop is not None and pop.campaign and pop.campaign not in self.campaign_choices:
            self._spawn_lookup(self._learn_choices(pop.campaign), "dispositions")

    def _spawn_lookup(self, work: Coroutine[Any, Any, None], name: str) -> None:
        lookup = asyncio.create_task(work, name=name)
        self._lookups.add(lookup)
        lookup.add_done_callback(self._lookups.discard)

    # -- the open line (nailed up): callees put through with no ring -----------------------------

    async def _open_line_rings(self, view: CallView) -> None:
        view.open_line, view.remote = True, _("the call centre")
        self.calls[view.id] = view
        self.announce(
            _(
                "The call centre is opening your line: calls will come through without ringing. Press F2 to answer."
            ),
            "assertive",
            cue="ring",
        )
        if self.options.auto_answer:
            await self.engine.answer(view.id)

    def _open_line(self) -> CallView | None:
        return next((c for c in self.calls.values() if c.open_line and c.status == "connected"), None)

    async def put_through(self, headers: dict[str, str]) -> bool:
        """A callee put through on the open line (the server's screen pop, softphone.server_pops):
        shown, spoken and looked up as a ringing call's pop; the agent is on a call. False when
        the phone has no open line (the pop is not for a call it has)."""
        view = self._open_line()
        if view is None or not headers.get("attempt"):
            log.warning("a screen pop came with no open line to put it through: ignored")
            return False
        pop = ScreenPop.from_headers(headers)
        phone = decode_header(headers.get("phone", ""))
        view.ref, view.pop = decode_header(headers["attempt"]), pop
        view.remote = mask_in_text(phone) if phone else _("the call centre")
        view.connected_at = time.monotonic()  # the talk is timed from the callee's arrival
        self._look_up_call(view, headers, pop)
        with contextlib.suppress(StateError):
            await self.status.change("on_call")
        text = _("Call put through from {who}.", who=view.remote)
        if pop is not None and pop.spoken():
            text += _(" {details}.", details=pop.spoken())
        self.announce(text, "assertive", cue="connected")
        return True

    def in_call(self) -> bool:
        """A call is going on: anything but an open line waiting for its next callee."""
        return any(not (c.open_line and c.pop is None) for c in self.calls.values())

    async def notice(self, kind: str, fields: dict[str, str]) -> bool:
        """A notice from the server for this agent (a cool-down's start or end, a compliment);
        False when the phone does not know the kind."""
        known = self.wellbeing.deliver(kind, fields)
        self._bump()
        return known

    async def put_through_ended(self, attempt: str) -> bool:
        """The callee put through on the open line left (the line stays open): the wrap-up, as
        after any call. False when no open line has that call."""
        view = self._open_line()
        if view is None or view.pop is None or view.ref != attempt or view.connected_at is None:
            return False
        talked = int(time.monotonic() - view.connected_at)
        await self._send_quality(view, final=True)
        self.announce(_("Call ended after {duration}.", duration=_duration(talked)), cue="ended")
        await self._begin_wrapup(view, talked)
        view.ref, view.pop, view.connected_at = str(uuid.uuid4()), None, None
        view.remote = _("the call centre")
        self.wellbeing.say_held()
        self._bump()
        return True

    async def _on_call_state(self, e: CallStateChanged) -> None:
        view = self.calls.get(e.call)
        if view is None:
            return
        if e.state == "confirmed" and view.status == "ringing" and view.open_line:
            view.status = "connected"  # not a call yet: the agent stays free for one
            self.announce(_("Line open: calls will come through without ringing."), cue="connected")
        elif e.state == "confirmed" and view.status in ("ringing", "dialing"):
            view.status = "connected"
            view.connected_at = time.monotonic()
            if view.role == "main" and self.status.state != "on_call":
                with contextlib.suppress(StateError):
                    await self.status.change("on_call")
            if view.role == "consult":
                text = _(
                    "Connected to colleague {who}. Press Alt+J to hand the caller over, Escape to go back.",
                    who=view.remote,
                )
            else:
                text = _("Connected to {who}.", who=view.remote)
            self.announce(text, cue="connected")
        elif e.state == "disconnected":
            await self._on_ended(view, e)
            self.wellbeing.say_held()  # compliments that came during the call
        self._bump()

    async def _on_ended(self, view: CallView, e: CallStateChanged) -> None:
        del self.calls[view.id]
        self.placed.ended(view.ref)
        if view.role == "main" and view.served and await self._handed_on(view):
            return
        if view.role == "main" and view.transfer_id and await self._only_consulted(view):
            return
        if view.open_line and view.pop is None:  # no callee on it: nothing to wrap up
            self.announce(_("Your open line was closed; calls will ring again."), cue="ended")
            return
        talked = int(time.monotonic() - view.connected_at) if view.connected_at else 0
        await self._send_quality(view, final=True)
        if view.role == "consult":
            main = self._main()
            if view.transfer_to is None:
                self.announce(
                    _("Colleague {who} is off the line ({reason}).", who=view.remote, reason=e.reason),
                    cue="ended",
                )
            if main is not None and main.status == "held" and view.transfer_to is None:
                await self.engine.unhold(main.id)
            return
        if view.transfer_to is not None:
            self.announce(_("Caller handed over to {who}.", who=view.transfer_to), cue="ended")
        elif view.connected_at is None:
            self.announce(
                _(
                    "Call from {who} ended before it was answered ({reason}).",
                    who=view.remote,
                    reason=e.reason,
                ),
                cue="ended",
            )
        else:
            self.announce(_("Call ended after {duration}.", duration=_duration(talked)), cue="ended")
        consult = self._consult()
        if consult is not None and view.transfer_to is None:
            consult.role = "main"
        if view.connected_at is None:
            return
        await self._begin_wrapup(view, talked)

    async def _begin_wrapup(self, view: CallView, talked: int) -> None:
        campaign = view.pop.campaign if view.pop else None
        self.wrapup = WrapUp(
            call_ref=view.ref,
            remote=view.remote,
            talk_seconds=talked,
            campaign=campaign,
            attempt=view.ref,
            choices=self._choices(campaign),
        )
        if self.options.auto_wrapup:
            # Through wrap-up (on a call → available is not a transition), closed at once.
            with contextlib.suppress(StateError):
                await self.status.change("wrap_up")
            # "other", else the campaign's first plain "done": never one that acts on the contact.
            choice = self._choose(HEADLESS_DISPOSITION) or next(
                (d for d in self.wrapup.choices if d.action == "done"), None
            )
            try:
                if choice is None:
                    raise ActionError(_("the campaign has no plain 'done' disposition"))
                await self.save_wrapup(choice.code, None, note="headless")
            except ActionError as exc:  # nobody could put it right: close it and take calls again
                log.warning("headless wrap-up not accepted: %s", exc)
                self.wrapup = None
                with contextlib.suppress(StateError):
                    await self.status.change("available")
            return
        with contextlib.suppress(StateError):
            await self.status.change("wrap_up")
        self.announce(
            _("Wrap-up. Choose the result with keys 1 to {n}, then Enter.", n=len(self.wrapup.choices)),
            cue="wrapup",
        )

    async def _learn_choices(self, campaign: str) -> None:
        """Ask the server for the campaign's wrap-up choices while the call rings; without an
        answer the wrap-up offers the defaults."""
        if self.server is None or not self.server.signed_in:
            return
        try:
            items = await self.server.dispositions(campaign)
            choices = tuple(
                Disposition(
                    key=str(d["key"]),
                    code=str(d["code"]),
                    label_en=str(d.get("label_en") or ""),
                    action=str(d["action"]),
                    label=str(d.get("label") or ""),
                )
                for d in items
            )
        except (ProvisioningError, KeyError, TypeError) as exc:
            log.info("wrap-up choices of %s not known: %s; the defaults are offered", campaign, exc)
            return
        if choices:
            self.campaign_choices[campaign] = choices

    async def _load_desk(self, desk: CallDesk) -> None:
        """Ask the server for the call's script and form while it rings; without them the screen
        pop shows what the call's headers carried."""
        if self.server is None or not self.server.signed_in:
            return
        try:
            data = await self.server.call_script(desk.call_ref, self._tickets.get(desk.call_ref))
        except ProvisioningError as exc:
            log.info("script of call %s not known: %s", desk.call_ref, exc)
            return
        desk.loaded = True
        desk.script_html = clean_script_html(str(data.get("script_html") or "")) or None
        desk.missing = [str(m) for m in data.get("script_missing") or []]
        desk.fields = {str(k): mask_in_text(str(v)) for k, v in (data.get("fields") or {}).items()}
        desk.form = data.get("form") if isinstance(data.get("form"), dict) else None
        desk.answers = dict(data.get("answers") or {})
        desk.case_id = data.get("case_id")
        self._bump()

    async def do_form(self, answers: dict[str, Any] | None = None, complete: bool = True) -> None:
        """Save the call's form with the server (a draft when `complete` is false)."""
        await self.save_form(dict(answers or {}), complete=complete)

    async def save_form(self, answers: dict[str, Any], *, complete: bool = True) -> bool:
        """True when the server kept the form; its refusal is said, naming each question."""
        desk = self.desk
        if desk is None or desk.form is None:
            raise ActionError(_("This call has no form."))
        if self.server is None or not self.server.signed_in:
            raise ActionError(_("The form cannot be saved without the server."))
        clean = {k: v for k, v in answers.items() if v not in (None, "")}
        try:
            reply = await self.server.save_form(
                desk.call_ref, self._tickets.get(desk.call_ref), clean, complete=complete
            )
        except ProvisioningError as exc:
            if exc.errors:
                desk.errors = dict(exc.errors)
                first = next(iter(exc.errors.values()))
                n = len(exc.errors)
                self.announce(
                    _("The form was not saved: {first}", first=first)
                    if n == 1
                    else _(
                        "The form was not saved: {n} answers need correcting. First: {first}",
                        n=n,
                        first=first,
                    ),
                    "assertive",
                    cue="error",
                )
                return False
            reason = exc.detail or str(exc)
            if exc.status is None or exc.status >= 500:
                reason = _("the server cannot be reached; your answers stay here, save again later")
            self.announce(_("The form was not saved: {reason}", reason=reason), "assertive", cue="error")
            return False
        desk.errors = {}
        desk.answers = dict(reply.get("answers") or clean)
        desk.saved = bool(reply.get("complete"))
        desk.case_id = reply.get("case_id") or desk.case_id
        if desk.case_id and desk.saved:
            self.announce(_("Form saved as case {id}.", id=desk.case_id), cue="ready")
        else:
            self.announce(_("Form saved.") if desk.saved else _("Draft saved."), cue="ready")
        return True

    def _choices(self, campaign: str | None) -> tuple[Disposition, ...]:
        return self.campaign_choices.get(campaign or "", DEFAULT_DISPOSITIONS)

    def _on_media(self, e: MediaChanged) -> None:
        view = self.calls.get(e.call)
        if view is None:
            return
        if e.status == "active":
            view.codec = e.codec or view.codec
            if view.status == "held":
                view.status = "connected"
                self.announce(_("Call resumed."), cue="resumed")
            elif view.status in ("ringing", "dialing"):
                pass  # "connected" is said on the call state
        elif e.status == "local_hold" and view.status != "held":
            view.status = "held"
            self.announce(_("{who} is on hold. Press F7 to resume.", who=view.remote), cue="held")
        elif e.status == "remote_hold":
            self.announce(_("The other side has put you on hold."), cue="held")
        elif e.status == "error":
            self.announce(_("The call's audio failed."), "assertive", cue="error")
        self._bump()

    async def _on_transfer(self, e: TransferProgress) -> None:
        view = self.calls.get(e.call)
        target = (view.transfer_to if view else None) or _("the target")
        if not e.final:
            return
        if e.ok:
            self.announce(_("Transfer to {target} succeeded.", target=target), cue="ended")
            if view is not None:  # our leg is done; not every server sends the BYE itself
                with contextlib.suppress(Exception):
                    await self.engine.hangup(e.call)
        else:
            if view is not None:
                view.transfer_to = None
            self.announce(
                _(
                    "Transfer to {target} failed ({reason}). You are still with the caller.",
                    target=target,
                    reason=e.reason or e.code,
                ),
                "assertive",
                cue="error",
            )

    # -- quality -----------------------------------------------------------------------------

    async def _quality_loop(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.options.quality_every))
            now = time.monotonic()
            for view in list(self.calls.values()):
                if view.status not in ("connected", "held"):
                    continue
                if now - self._quality_sent.get(view.id, 0.0) >= self.options.quality_every:
                    self._quality_sent[view.id] = now
                    await self._send_quality(view, final=False)

    async def quality_of(self, view: CallView) -> QualityReport | None:
        with contextlib.suppress(Exception):
            sample = await self.engine.stats(view.id)
            if sample is not None and (sample.rx_packets or sample.tx_packets):
                report = assess(sample)
                self.last_quality = report
                return report
        return None

    async def _send_quality(self, view: CallView, *, final: bool) -> None:
        report = await self.quality_of(view)
        if report is None:
            return
        try:
            message = CallQuality(
                agent=self.status.agent,
                call_ref=view.ref,
                codec=report.codec,
                jitter_ms=report.jitter_ms,
                loss_pct=report.loss_pct,
                rtt_ms=report.rtt_ms,
                mos=max(1.0, report.mos),
                final=final,
            )
        except ValueError as exc:  # a bad figure must never stop the end of a call being handled
            log.warning("call quality of %s not sent: %s", view.ref, exc)
            return
        try:
            await self.status.publisher.publish_quality(message)
        except (ProvisioningError, OSError) as exc:
            log.warning("call quality not sent: %s", exc)

    async def _handed_on(self, view: CallView) -> bool:
        """The service handed this call to a colleague: their wrap-up, and this agent is free."""
        await self.transfers.settle(view.ref)
        handed = self.transfers.handed_on(view.ref)
        current = self.transfers.current
        target = (current.to_agent or current.target) if current else None
        self.transfers.ended(view.ref)
        if not handed:
            return False
        await self._send_quality(view, final=True)
        self.announce(
            _("Caller handed over to {agent}; the wrap-up is theirs. You are available.", agent=target or ""),
            cue="ended",
        )
        for state in ("wrap_up", "available"):  # a call's end passes through wrap-up
            with contextlib.suppress(StateError):
                await self.status.change(state)
        return True

    async def _only_consulted(self, view: CallView) -> bool:
        """A colleague's consult that ended without handing us the caller: not our wrap-up. When
        the server cannot say, the wrap-up opens (better asked once too often than lost)."""
        if self.server is None or not self.server.signed_in or view.transfer_id is None:
            return False
        found: dict[str, Any] = {}
        for _look in range(TRANSFER_SETTLE_LOOKS):  # the leg may end a moment before the row says why
            try:
                found = await self.server.transfer(view.transfer_id)
            except ProvisioningError as exc:
                log.info("transfer %s: %s", view.transfer_id, exc)
                return False
            if found.get("state") not in ("requested", "ringing", "consulting"):
                break
            await asyncio.sleep(0.5)
        if found.get("state") == "completed" and found.get("to_agent") == self.status.agent:
            return False  # the caller is ours now: so is the wrap-up
        if found.get("state") in ("requested", "ringing", "consulting"):
            return False
        self.announce(
            _("Consultation with {agent} ended; the caller stays with them.", agent=view.transfer_from or ""),
            cue="ended",
        )
        for state in ("wrap_up", "available"):
            with contextlib.suppress(StateError):
                await self.status.change(state)
        return True

    def _served(self) -> CallView | None:
        """The connected call the service put through, when the server can transfer it."""
        view = self._main()
        if view is None or not view.served or self.server is None or not self.server.signed_in:
            return None
        return view

    def _need_served(self) -> CallView:
        view = self._served()
        if view is None or view.status not in ("connected", "held"):
            raise ActionError(_("There is no call of the call centre's to transfer."))
        return view

    async def do_transfer_open(self, mode: str = "attended") -> None:
        """The chooser: colleague, queue or outside number (keyboard: Alt+T blind, Alt+C consult)."""
        self._need_served()
        await self.transfers.open(mode)

    async def do_transfer_choose(self, kind: str, target: str, mode: str = "attended") -> None:
        view = self._need_served()
        await self.transfers.start(view.ref, kind, target, mode)

    async def do_transfer_complete(self) -> None:
        await self.transfers.step("complete")

    async def do_transfer_cancel(self) -> None:
        await self.transfers.step("cancel")

    def _server_transfer(self) -> bool:
        current = self.transfers.current
        return current is not None and current.live

    # -- actions -----------------------------------------------------------------------------

    def _main(self) -> CallView | None:
        return next((c for c in self.calls.values() if c.role == "main"), None)

    def _consult(self) -> CallView | None:
        return next((c for c in self.calls.values() if c.role == "consult"), None)

    def _need_main(self, *statuses: CallStatus) -> CallView:
        view = self._main()
        if view is None:
            raise ActionError(_("There is no call."))
        if statuses and view.status not in statuses:
            raise ActionError(
                _("Not possible while the call is {status}.", status=_(CALL_STATUS_SPOKEN[view.status]))
            )
        return view

    async def act(self, action: str, **args: Any) -> None:
        """Run one UI action by name; `ActionError` carries what to say when it cannot be done."""
        handler = getattr(self, f"do_{action}", None)
        if handler is None:
            raise ActionError(_("Unknown action {action}.", action=action))
        try:
            await handler(**args)
        except StateError as exc:
            raise ActionError(str(exc)) from exc

    async def do_answer(self) -> None:
        view = next((c for c in self.calls.values() if c.status == "ringing"), None)
        if view is None:
            raise ActionError(_("No call is ringing."))
        await self.engine.answer(view.id)

    async def do_hangup(self) -> None:
        consult = self._consult()
        if consult is not None:
            await self.engine.hangup(consult.id)
            return
        view = self._need_main()
        await self.engine.hangup(view.id, 486 if view.status == "ringing" else 0)

    async def do_hold(self) -> None:
        view = self._need_main("connected", "held")
        if view.status == "held":
            await self.engine.unhold(view.id)
        else:
            await self.engine.hold(view.id)

    async def do_mute(self) -> None:
        view = self._need_main("connected", "held")
        view.muted = not view.muted
        await self.engine.set_mute(view.id, view.muted)
        self.announce(_("Microphone muted.") if view.muted else _("Microphone on."), cue="mute")

    async def do_dtmf(self, digits: str) -> None:
        view = self._need_main("connected")
        await self.engine.send_dtmf(view.id, digits)
        self._bump()

    async def do_transfer(self, target: str = "") -> None:
        if self._served() is not None:  # the service's call: its transfer, not SIP REFER
            if not target.strip():
                await self.do_transfer_open("blind")
                return
            await self.do_transfer_choose("agent", target, "blind")
            return
        target = _clean_target(target)
        view = self._need_main("connected", "held")
        view.transfer_to = target
        self.announce(_("Transferring the caller to {target}.", target=target), cue="transfer")
        try:
            await self.engine.transfer(view.id, target)
        except Exception:
            view.transfer_to = None
            raise

    async def do_consult(self, target: str = "") -> None:
        if self._served() is not None:
            if not target.strip():
                await self.do_transfer_open("attended")
                return
            await self.do_transfer_choose("agent", target, "attended")
            return
        target = _clean_target(target)
        view = self._need_main("connected", "held")
        if self._consult() is not None:
            raise ActionError(_("You are already consulting a colleague."))
        if view.status == "connected":
            await self.engine.hold(view.id)
        cid = await self.engine.make_call(target)
        self.calls[cid] = CallView(
            id=cid, ref=str(uuid.uuid4()), role="consult", status="dialing", remote=target, direction="out"
        )
        self.announce(_("Calling colleague {target}. The caller is on hold.", target=target), cue="dialing")

    async def do_complete(self) -> None:
        if self._server_transfer():
            await self.transfers.step("complete")
            return
        view = self._need_main("connected", "held")
        consult = self._consult()
        if consult is None or consult.status != "connected":
            raise ActionError(_("Consult a colleague first (Alt+C) and wait until they answer."))
        view.transfer_to = consult.remote
        consult.transfer_to = consult.remote
        self.announce(_("Handing the caller over to {who}.", who=consult.remote), cue="transfer")
        await self.engine.attended_transfer(view.id, consult.id)

    async def do_cancel(self) -> None:
        if self.transfers.chooser is not None:
            self.transfers.dismiss()
            return
        if self._server_transfer():
            await self.transfers.step("cancel")
            return
        consult = self._consult()
        if consult is not None:
            await self.engine.hangup(consult.id)

    async def do_ready(self) -> None:
        if self.wrapup is not None:
            raise ActionError(
                _("Finish the wrap-up first: choose a result with keys 1 to {n}.", n=len(self.wrapup.choices))
            )
        await self.status.change("available")
        self.announce(_("You are available for calls."), cue="ready")

    async def do_break(self, reason: str) -> None:
        await self.status.change("break", reason)
        self.announce(
            _(
                "You are on a break: {reason}. Press Alt+R when you are back.",
                reason=_(BREAK_REASONS[reason]),
            ),
            cue="break",
        )

    async def do_logout(self) -> None:
        if self.calls:
            raise ActionError(_("Finish the call before logging out."))
        if self.status.state == "logged_out":
            await self.status.change("available")
            self.announce(_("Logged in. You are available for calls."), cue="ready")
            return
        await self.status.change("logged_out")
        self.announce(
            _("Logged out. Calls will not be sent to you. Press Alt+L to log in again."), cue="break"
        )

    async def do_hours(self) -> None:
        """My day (Alt+W, and the global hot key): hear and see today's pay-relevant counts."""
        if self.server is None or not self.server.signed_in:
            raise ActionError(_("Working hours are not available without the server."))
        try:
            report = await self.server.my_day()
            self.my_day = my_day_view(report)
        except ProvisioningError as exc:
            if exc.status != 404:  # a server without My day: the hours as before
                raise ActionError(_("Working hours could not be read: {error}", error=exc)) from exc
            try:
                report = await self.server.hours()
            except ProvisioningError as again:
                raise ActionError(_("Working hours could not be read: {error}", error=again)) from again
        self.hours_text = str(report.get("spoken") or "")
        self.announce(self.hours_text or _("No working hours recorded yet."), cue="info")

    async def do_status(self) -> None:
        parts = [
            _("You are {state}.", state=self.status.spoken()),
            _("Phone {state}.", state=self.registration_text),
        ]
        for c in self.calls.values():
            status = _(CALL_STATUS_SPOKEN[c.status])
            if c.role == "consult":
                parts.append(_("Colleague {who}: {status}.", who=c.remote, status=status))
            else:
                parts.append(_("Call with {who}: {status}.", who=c.remote, status=status))
        if self.wrapup is not None:
            parts.append(_("Wrap-up is open."))
        await self._ask_cooldown()
        rest = self.wellbeing.state_text()
        if rest is not None:
            parts.append(rest)
        self.announce(_(" ").join(parts), cue="info")

    async def do_practice(self, scenario: str = "") -> None:
        """A practice call (F3): the server rings this phone with a simulated caller, recorded as
        practice (workforce.practice); each press takes the next of the server's scenarios."""
        if self.server is None or not self.server.signed_in:
            raise ActionError(_("Practice calls need the call centre's server."))
        if self.in_call():
            raise ActionError(_("Finish the call before a practice call."))
        title = scenario
        try:
            if not scenario:
                found = await self.server.practice_scenarios()
                if not found:
                    raise ActionError(_("The call centre has no practice scenarios."))
                chosen = found[self._practice_turn % len(found)]
                self._practice_turn += 1
                scenario, title = str(chosen["name"]), str(chosen.get("title") or chosen["name"])
            answer = await self.server.start_practice(scenario)
        except ProvisioningError as exc:
            raise ActionError(_("No practice call: {error}", error=exc)) from exc
        self.announce(
            _("Practice call: {title}. {message}", title=title, message=answer.get("message") or ""),
            cue="info",
        )

    async def _ask_cooldown(self) -> None:
        """The server's word on my cool-down (what the phone heard stands when it cannot say)."""
        if self.server is None or not self.server.signed_in:
            return
        try:
            self.wellbeing.learn(await self.server.my_cooldown())
        except ProvisioningError as exc:
            log.info("cool-down not read: %s", exc)

    async def do_ask_help(self) -> None:
        """The help key: a supervisor is alerted (and may listen, whisper to me only, or join)."""
        view = self._need_help_call()
        answer = await self._help_server(lambda server: server.ask_help(view.ref))
        self.announce(str(answer.get("message") or _("Help asked for.")), "assertive", cue="info")

    async def do_abusive(self) -> None:
        """End an abusive call: the server plays the caller a courteous goodbye and hangs up; my
        cool-down (no call offered) is said, e.g. 您有5分钟休息时间."""
        view = self._need_help_call()
        answer = await self._help_server(lambda server: server.end_abusive(view.ref))
        self.announce(str(answer.get("message") or ""), "assertive", cue="info")

    def _need_help_call(self) -> CallView:
        view = self._served()
        if view is None or view.status not in ("connected", "held"):
            raise ActionError(_("There is no call of the call centre's on this phone."))
        return view

    async def _help_server(self, ask: Callable[[ServerClient], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        assert self.server is not None  # _served() checked it
        try:
            return await ask(self.server)
        except ProvisioningError as exc:
            raise ActionError(str(exc)) from exc

    async def do_quality(self) -> None:
        view = self._need_main("connected", "held")
        report = await self.quality_of(view)
        if report is None:
            raise ActionError(_("No call quality figures yet."))
        self.announce(
            _(
                "Line quality {verdict}: score {mos} of 5, jitter {jitter} ms, loss {loss} percent.",
                verdict=_(QUALITY_VERDICTS[report.verdict]),
                mos=format(report.mos, ".1f"),
                jitter=format(report.jitter_ms, ".0f"),
                loss=format(report.loss_pct, ".1f"),
            ),
            cue="info",
        )

    # -- calls the agent places (softphone.placed_calls) ----------------------------------------------

    async def do_preview(self) -> None:
        """Fetch the next contact to call (reserved to this agent for a while) and say it."""
        await self.placed.next_contact()

    def _free_to_call(self) -> None:
        if self.calls:
            raise ActionError(_("Finish the call you are on first."))
        if self.wrapup is not None:
            raise ActionError(
                _("Finish the wrap-up first: choose a result with keys 1 to {n}.", n=len(self.wrapup.choices))
            )

    async def do_preview_call(self) -> None:
        self._free_to_call()
        await self.placed.call(None)

    async def do_preview_skip(self, reason: str, note: str | None = None) -> None:
        await self.placed.skip(reason, note)

    async def do_callbacks(self) -> None:
        await self.placed.list_callbacks()

    async def do_callback_call(self, contact_id: str) -> None:
        if not contact_id.isdigit():
            raise ActionError(_("Choose a callback from the list."))
        self._free_to_call()
        await self.placed.call(int(contact_id))

    async def do_wrapup(
        self,
        disposition: str,
        callback_at: str | None = None,
        note: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        await self.save_wrapup(disposition, callback_at, note=note, answers=answers)

    def _choose(self, disposition: str) -> Disposition | None:
        """The open wrap-up's choice by number key or by code."""
        choices = self.wrapup.choices if self.wrapup else DEFAULT_DISPOSITIONS
        return next((d for d in choices if disposition in (d.key, d.code)), None)

    async def save_wrapup(
        self,
        disposition: str,
        callback_at: str | None,
        *,
        note: str | None = None,
        answers: dict[str, Any] | None = None,
    ) -> None:
        """Save the wrap-up: `disposition` is a number key or a code of the call's choices.
        `answers` (the call's form) go with it; an inbound line's form is saved (as a case) first."""
        if self.wrapup is None:
            raise ActionError(_("There is no wrap-up open."))
        choice = self._choose(disposition)
        if choice is None:
            raise ActionError(_("Choose a result with keys 1 to {n}.", n=len(self.wrapup.choices)))
        when: datetime | None = None
        if choice.action == "callback":
            if not callback_at:
                raise ActionError(_("A callback needs a date and time."))
            try:
                when = datetime.fromisoformat(callback_at)
            except ValueError as exc:
                raise ActionError(_("The callback time is not a date and time.")) from exc
        given = {k: v for k, v in (answers or {}).items() if v not in (None, "")}
        desk = self.desk if self.desk is not None and self.desk.call_ref == self.wrapup.call_ref else None
        inbound_form = desk is not None and desk.form is not None and desk.campaign is None
        # An inbound call keeps no wrap-up: its form (a case) must reach the server first.
        if inbound_form and given and desk is not None and not desk.saved and not await self.save_form(given):
            raise ActionError(_("Save the form first (Alt+V); the wrap-up stays open."))
        record: dict[str, Any] = {
            "call_ref": self.wrapup.call_ref,
            "disposition": choice.code,
            "callback_at": when.isoformat() if when else None,
            "note": note,
            "talk_seconds": self.wrapup.talk_seconds,
        }
        if given and (desk is None or desk.campaign is not None):
            record["answers"] = given
        sent = await self.on_wrapup(record) if self.on_wrapup is not None else None
        if isinstance(sent, Delivery) and sent.outcome == "refused" and sent.status == 422:
            # Something the agent can put right (the time, the choice, an answer): it stays open.
            if desk is not None and sent.errors:
                desk.errors = dict(sent.errors)
                self._bump()
            raise ActionError(_("The server did not accept the wrap-up: {reason}.", reason=sent.reason))
        self.wrapup = None
        if desk is not None:
            self.desk = None
            self._tickets.pop(desk.call_ref, None)
        text = _("Saved: {choice}.", choice=choice.spoken)
        if when is not None:
            text += _(
                " Callback on {day} at {time}.", day=when.strftime("%Y-%m-%d"), time=when.strftime("%H:%M")
            )
        politeness: Politeness = "polite"
        if isinstance(sent, Delivery):
            said, politeness = _delivery_text(sent, choice)
            text += said
        if self.status.state in ("wrap_up", "on_call"):
            await self.status.change("available")
            text += _(" You are available for calls.")
        self.announce(text, politeness, cue="ready")

    def wrapup_settled(self, delivery: Delivery) -> None:
        """A wrap-up kept while the server was away has now been taken or refused by it."""
        if delivery.outcome == "stored":
            message = (delivery.response or {}).get("message") or ""
            said = _("A wrap-up saved earlier is now with the server.")
            self.announce(f"{said} {message}".strip(), cue="info")
        elif delivery.outcome == "refused":
            self.announce(
                _("The server refused a wrap-up saved earlier: {reason}.", reason=delivery.reason),
                "assertive",
                cue="error",
            )


def _delivery_text(sent: Delivery, choice: Disposition) -> tuple[str, Politeness]:
    """What to add to "Saved: …" about where the wrap-up went."""
    if sent.outcome == "queued":
        return _(" The server cannot be reached; the wrap-up is kept and sent when it is back."), "polite"
    if sent.outcome == "refused":
        if sent.status == 404:
            return _(" The server keeps no wrap-up for this call (it is not a campaign's call)."), "polite"
        return _(" The server refused it: {reason}.", reason=sent.reason), "assertive"
    response = sent.response or {}
    if choice.action == "callback" and not response.get("callback_moved"):
        return "", "polite"  # "Callback on …" has said it
    message = str(response.get("message") or "")
    return (f" {message}" if message else ""), "polite"


def _clean_target(target: str) -> str:
    target = target.strip()
    if not target or len(target) > 64 or any(ch in target for ch in "<>\"' \t\r\n;"):
        raise ActionError(_("Type the extension or name to transfer to."))
    return target


def _duration(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    if minutes:
        return _("{m} min {s} s", m=minutes, s=secs)
    return _("{s} seconds", s=secs)
