"""An Asterisk in memory, and ARI clients of it that are drop-in `core.ari.AriClient`s.

`FakeAsterisk` keeps channels (state, Stasis app and args, dialplan location, variables, bridge),
bridges, playbacks and live recordings; `FakeAsterisk.client()` gives a `FakeAri`, an `AriClient`
whose HTTP layer is replaced: its public methods are the real client's own (same signatures, same
paths and parameters), only `request()` lands here instead of on the network, and `events()` yields
``WarmlineConnected`` first and ``WarmlineReconnected`` after a restart, like the real stream.

What Asterisk would say in reply is emitted as it would be: an originate into the app rings the
callee, who answers into Stasis (StasisStart with the app args) or refuses (ChannelDestroyed with
the cause); a hang-up gives ChannelHangupRequest, StasisEnd and ChannelDestroyed (cause 16); a
playback gives PlaybackStarted and, once its audio has played (or when the test says),
PlaybackFinished; `continue` into ``warmline-amd`` gives StasisEnd, then the callee's AMD verdict
re-enters Stasis with args ``['amd', STATUS, CAUSE]``. Events reach a client when its app watches
the channel: while the channel is in its Stasis app, after it was originated into the app (until it
is gone: Asterisk's originate subscribes the app, and leaving Stasis keeps that subscription) and
after an explicit subscription -- so a caller that sends a channel it did not originate (or found
after a restart) to the dialplan without subscribing loses its events, as with the real Asterisk.

Callees follow a `Callee` script, chosen per endpoint. Every delay is in loop seconds: with
`tests.fakes.clock.run_virtual` a whole call (ring, AMD, prompts) takes milliseconds and happens in
the same order every time. Failures and delays are injected per operation (named like the client's
methods): `fail("originate", 0, "ConnectError: ...")`, `delay("hangup", 2.0)`, `hold("play")`.
A test acts at a moment of the call with `when("PlaybackStarted", action, nth=2)`, plays the far end
with `answer_call`, `press`, `hangup_by_callee`, `finish_playback`, `emit` (any event), finds calls
already up with `place`, restarts Asterisk with `restart()` (or `stop()` ... `start()`), and kills
the process behind a client with `FakeAri.kill()`. `FakeAri.lag` makes a client's events arrive
that many loop seconds after they happen, in order (a busy server's socket behind its HTTP answers).

    asterisk = FakeAsterisk(callees={"Local/1001@lab-pstn": Callee(press="1")})
    ari = asterisk.client()                       # app "warmline"
    ...                                           # drive code that takes an AriClient
    assert [r.op for r in asterisk.requests] == ["originate", "continue_in_dialplan", ...]
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from core.ari import CONNECTED, RECONNECTED, AriClient, AriError, ParamValue, build_params
from ivr.tts import wav_seconds

JSON = dict[str, Any]

AMD_CONTEXT = "warmline-amd"  # config/asterisk/extensions.conf: AMD(), then Stasis(app,amd,STATUS,CAUSE)
REASON_CAUSES = {"normal": 16, "busy": 17, "no_answer": 19, "congestion": 34, "answered_elsewhere": 26}
CAUSE_TEXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    26: "Answered elsewhere",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
}
DEFAULT_AMD_CAUSE = {"HUMAN": "HUMAN-500-500", "MACHINE": "LONGGREETING-1500-1500", "NOTSURE": "TOOLONG-5000"}
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # event timestamps: a fixed day plus loop time, never today
CONNECT_ERROR = "ConnectError: [Errno 111] Connection refused"
READ_TIMEOUT = "ReadTimeout: timed out"

HangupOn = Literal["ringing", "answer", "amd", "prompt", "pressed"]


# ------------------------------------------------------------------ callee scripts


@dataclass(frozen=True)
class Callee:
    """What the person (or machine) at one number does. Delays are loop seconds.

    - `refuse`: end the call at once with this cause instead of ringing (17 busy, 34 congestion).
    - `answer_after`: seconds of ringing before answering; None never answers, and the call rings
      until the originate's timeout, when Asterisk ends it with `no_answer_cause` (None: never).
    - `amd`: the verdict when the call is sent to ``warmline-amd`` (HUMAN, MACHINE, NOTSURE),
      after `amd_seconds`; a MACHINE talks `greeting_seconds` once talk detection is on.
    - `press`: digits pressed `press_after` seconds after prompt number `press_on_prompt` (1-based,
      every playback on the channel counts) has `press_when` started or finished.
    - `hangup_on`: hang up `hangup_after` seconds after: ringing starts, the answer, the start of
      AMD, the start of prompt `hangup_prompt`, or the last digit pressed; with `hangup_cause`.
    """

    refuse: int | None = None
    answer_after: float | None = 1.0
    no_answer_cause: int | None = 19
    amd: str = "HUMAN"
    amd_cause: str | None = None
    amd_seconds: float = 2.5
    greeting_seconds: float = 4.0
    press: str = ""
    press_on_prompt: int = 2
    press_when: Literal["started", "finished"] = "finished"
    press_after: float = 0.5
    press_between: float = 0.25
    hangup_on: HangupOn | None = None
    hangup_after: float = 0.0
    hangup_prompt: int = 1
    hangup_cause: int = 16


BUSY = Callee(refuse=17)
CONGESTION = Callee(refuse=34)
NO_ANSWER = Callee(answer_after=None)
LISTENER = Callee()  # answers, is HUMAN, presses nothing
MACHINE = Callee(amd="MACHINE")


def confirms(digit: str = "1", **kw: Any) -> Callee:
    """Answers, is HUMAN, presses `digit` once the question (prompt 2) has been asked."""
    return Callee(press=digit, **kw)


class _CalleeRun:
    """One callee's script running on one channel, driven by the channel's events."""

    def __init__(self, asterisk: FakeAsterisk, channel: FakeChannel, script: Callee) -> None:
        self.asterisk = asterisk
        self.channel = channel
        self.script = script
        self.prompts_started = 0
        self.prompts_finished = 0
        self._timers: list[asyncio.Handle] = []

    def later(self, delay: float, action: Callable[[], object]) -> None:
        def guarded() -> None:
            if self.asterisk.channels.get(self.channel.id) is self.channel:
                action()

        loop = asyncio.get_running_loop()
        handle = loop.call_soon(guarded) if delay <= 0 else loop.call_later(delay, guarded)
        self._timers.append(handle)

    def cancel(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _hangup(self) -> None:
        self.asterisk.hangup_by_callee(self.channel.id, self.script.hangup_cause)

    def ring(self, ring_timeout: float) -> None:
        """From the originate on: refuse, or ring (and answer, or let Asterisk time out)."""
        s = self.script
        if s.refuse is not None:
            self.later(0, lambda: self.asterisk.end_channel(self.channel, s.refuse or 0))
            return
        self.asterisk.set_state(self.channel, "Ringing")
        if s.hangup_on == "ringing":
            self.later(s.hangup_after, self._hangup)
        if s.answer_after is not None:
            self.later(s.answer_after, lambda: self.asterisk.answer_call(self.channel.id))
        if ring_timeout > 0 and s.no_answer_cause is not None:
            cause = s.no_answer_cause

            def time_out() -> None:
                if self.channel.state != "Up":
                    self.asterisk.end_channel(self.channel, cause)

            self.later(ring_timeout, time_out)

    def answered(self) -> None:
        if self.script.hangup_on == "answer":
            self.later(self.script.hangup_after, self._hangup)

    def amd(self) -> None:
        """The channel runs AMD() in the dialplan; the verdict sends it back into Stasis."""
        s = self.script
        if s.hangup_on == "amd":
            self.later(s.hangup_after, self._hangup)
        cause = s.amd_cause or DEFAULT_AMD_CAUSE.get(s.amd, "")
        app = self.channel.dialplan_app
        self.later(
            s.amd_seconds, lambda: self.asterisk.enter_stasis(self.channel.id, ["amd", s.amd, cause], app)
        )

    def talk_detection(self) -> None:
        """TALK_DETECT is on: a machine is still playing its greeting; a person is listening."""
        if self.script.amd != "MACHINE":
            return
        self.asterisk.emit_about(self.channel, "ChannelTalkingStarted")
        self.later(
            self.script.greeting_seconds,
            lambda: self.asterisk.emit_about(
                self.channel, "ChannelTalkingFinished", duration=round(self.script.greeting_seconds * 1000)
            ),
        )

    def _press(self) -> None:
        s = self.script
        self.asterisk.press(self.channel.id, s.press, between=s.press_between)
        if s.hangup_on == "pressed":
            self.later(max(0, len(s.press) - 1) * s.press_between + s.hangup_after, self._hangup)

    def react(self, event: JSON) -> None:
        s = self.script
        kind = event.get("type")
        if kind == "PlaybackStarted":
            self.prompts_started += 1
            if s.press and s.press_when == "started" and self.prompts_started == s.press_on_prompt:
                self.later(s.press_after, self._press)
            if s.hangup_on == "prompt" and self.prompts_started == s.hangup_prompt:
                self.later(s.hangup_after, self._hangup)
        elif kind == "PlaybackFinished":
            self.prompts_finished += 1
            if s.press and s.press_when == "finished" and self.prompts_finished == s.press_on_prompt:
                self.later(s.press_after, self._press)


# ------------------------------------------------------------------ what Asterisk keeps


@dataclass
class FakeChannel:
    id: str
    name: str
    endpoint: str
    state: str = "Down"
    caller_number: str = ""
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    app_name: str = ""
    app_data: str = ""
    stasis_app: str | None = None  # the app it is in now
    stasis_args: list[str] = field(default_factory=list)
    origin_app: str | None = None  # originated into this app: it enters it when answered
    origin_args: list[str] = field(default_factory=list)
    # The app an originate into it subscribed: its events go there until the channel is gone, in
    # Stasis or not (resource_channels.c subscribes the app; res_stasis counts subscriptions).
    originated_for: str | None = None
    subscribed: set[str] = field(default_factory=set)  # apps that subscribed explicitly
    dialplan_app: str = "warmline"  # the app the dialplan's Stasis() names (extensions.conf's {{ app }})
    bridge: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    moh: str | None = None
    talk_detect: bool = False
    created: str = ""
    callee: _CalleeRun | None = None

    @property
    def in_stasis(self) -> bool:
        return self.stasis_app is not None

    def watchers(self) -> set[str]:
        apps = set(self.subscribed)
        if self.stasis_app is not None:
            apps.add(self.stasis_app)
        if self.origin_app is not None:
            apps.add(self.origin_app)
        if self.originated_for is not None:
            apps.add(self.originated_for)
        return apps

    def json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": {"name": "", "number": self.caller_number},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": self.context,
                "exten": self.exten,
                "priority": self.priority,
                "app_name": self.app_name,
                "app_data": self.app_data,
            },
            "creationtime": self.created,
            "language": "en",
        }


@dataclass
class FakeBridge:
    id: str
    name: str
    bridge_type: str
    channels: list[str] = field(default_factory=list)
    subscribed: set[str] = field(default_factory=set)

    def json(self) -> JSON:
        return {
            "id": self.id,
            "technology": "simple_bridge",
            "bridge_type": self.bridge_type,
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": self.name,
            "channels": list(self.channels),
        }


@dataclass
class FakePlayback:
    id: str
    media: list[str]
    target: str  # channel id
    state: str = "queued"
    handle: asyncio.Handle | None = None

    def json(self) -> JSON:
        return {
            "id": self.id,
            "media_uri": self.media[0] if self.media else "",
            "target_uri": f"channel:{self.target}",
            "language": "en",
            "state": self.state,
        }


@dataclass
class FakeRecording:
    name: str
    format: str
    target_uri: str
    state: str = "recording"
    handle: asyncio.Handle | None = None

    def json(self) -> JSON:
        return {"name": self.name, "format": self.format, "target_uri": self.target_uri, "state": self.state}


@dataclass
class Request:
    """One REST call as the fake received it; `op` is the AriClient method it corresponds to."""

    client: str
    method: str
    path: str
    op: str
    target: str | None
    params: dict[str, Any]
    body: Mapping[str, Any] | None
    error: AriError | None = None


@dataclass
class _Failure:
    op: str
    status: int
    message: str
    times: int | None
    placed: bool
    when: Callable[[Request], bool] | None


@dataclass
class _Trigger:
    kind: str
    channel: str | None
    nth: int
    action: Callable[[], object]


@dataclass
class _Delay:
    op: str
    seconds: float
    gate: asyncio.Event | None
    times: int | None


# ------------------------------------------------------------------ the fake Asterisk


class FakeAsterisk:
    """One Asterisk: channels, bridges, playbacks, recordings, callees; clients connect to it."""

    def __init__(
        self,
        *,
        callees: Mapping[str, Callee] | None = None,
        default: Callee | Callable[[str], Callee] = LISTENER,
        auto_finish_playbacks: bool = True,
        play_seconds: float | None = None,
    ) -> None:
        self.callees: dict[str, Callee] = dict(callees or {})
        self.default = default
        self.auto_finish_playbacks = auto_finish_playbacks
        self.play_seconds = play_seconds  # None: a playback lasts as long as its WAV files (1 s if none)
        self.channels: dict[str, FakeChannel] = {}
        self.bridges: dict[str, FakeBridge] = {}
        self.playbacks: dict[str, FakePlayback] = {}
        self.recordings: dict[str, FakeRecording] = {}
        # Called as a live recording starts (e.g. to write the file Asterisk would write).
        self.on_record: Callable[[FakeRecording], None] | None = None
        self.requests: list[Request] = []
        self.events: list[JSON] = []  # every event Asterisk sent (to whoever listened), in order
        self.destroyed: dict[str, int] = {}  # channel id -> hang-up cause, for every channel that ended
        # app -> event types it asked not to be sent (PUT eventFilter); forgotten when Asterisk stops
        self.disallowed: dict[str, frozenset[str]] = {}
        self.globals: dict[str, str] = {}  # global dialplan variables (GET/POST /asterisk/variable)
        # (app, the replaced client, the new one, len(requests) then): each ApplicationReplaced sent
        self.replacements: list[tuple[str, str, str, int]] = []
        self.up = True
        self.restarts = 0
        self._clients: list[FakeAri] = []
        self._failures: list[_Failure] = []
        self._delays: list[_Delay] = []
        self._triggers: list[_Trigger] = []
        self._serial = itertools.count(1)
        self._up_event: asyncio.Event | None = None
        # What the dialplan does with a call originated into a context, once it is answered
        # (e.g. ``warmline-record``: start recording, then Stasis(warmline,agent-leg)).
        self.dialplan: dict[str, Callable[[FakeChannel], None]] = {}

    # ---------------------------------------------------------- set-up

    def client(self, app: str = "warmline", name: str | None = None) -> FakeAri:
        ari = FakeAri(self, app, name or f"{app}#{len(self._clients) + 1}")
        self._clients.append(ari)
        return ari

    def callee(self, endpoint: str, script: Callee) -> None:
        self.callees[endpoint] = script

    def script_for(self, endpoint: str) -> Callee:
        if endpoint in self.callees:
            return self.callees[endpoint]
        return self.default if isinstance(self.default, Callee) else self.default(endpoint)

    def fail(
        self,
        op: str,
        status: int = 500,
        message: str = "Internal Server Error",
        *,
        times: int | None = 1,
        placed: bool = False,
        when: Callable[[Request], bool] | None = None,
    ) -> None:
        """The next `times` calls of `op` (None: all) raise AriError(status, ..., message). With
        `placed` the operation is done first and only its answer is lost (a read timeout)."""
        self._failures.append(_Failure(op, status, message, times, placed, when))

    def unreachable(self, op: str, *, times: int | None = 1) -> None:
        """`op` never reaches Asterisk (AriError status 0, ConnectError): nothing happens."""
        self.fail(op, 0, CONNECT_ERROR, times=times)

    def read_timeout(self, op: str, *, placed: bool = True, times: int | None = 1) -> None:
        """`op` reached Asterisk but its answer timed out (AriError status 0, ReadTimeout)."""
        self.fail(op, 0, READ_TIMEOUT, times=times, placed=placed)

    def delay(self, op: str, seconds: float, *, times: int | None = None) -> None:
        """Asterisk takes `seconds` (loop time) to answer each call of `op`."""
        self._delays.append(_Delay(op, seconds, None, times))

    def hold(self, op: str, *, times: int | None = 1) -> asyncio.Event:
        """Calls of `op` wait until the returned event is set."""
        gate = asyncio.Event()
        self._delays.append(_Delay(op, 0.0, gate, times))
        return gate

    # ---------------------------------------------------------- looking

    def calls(self, op: str, target: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.op == op and (target is None or r.target == target)]

    def ops(self, target: str | None = None) -> list[str]:
        return [r.op for r in self.requests if target is None or r.target == target]

    def history(self, channel_id: str) -> list[str]:
        """The types of the events Asterisk sent about one channel, in order."""
        return [e["type"] for e in self.events if channel_id in _ids(e)]

    @property
    def connected(self) -> list[FakeAri]:
        return [c for c in self._clients if c.connected]

    # ---------------------------------------------------------- events

    def _timestamp(self) -> str:
        try:
            seconds = asyncio.get_running_loop().time()
        except RuntimeError:
            seconds = 0.0
        return (EPOCH + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")

    def when(
        self, kind: str, action: Callable[[], object], *, channel: str | None = None, nth: int = 1
    ) -> None:
        """Run `action` (soon after, from the loop) once the `nth` event of type `kind` (about
        `channel`, if given) has been sent: "restart Asterisk when the second prompt starts"."""
        self._triggers.append(_Trigger(kind, channel, nth, action))

    def stamp(self) -> JSON:
        return {"timestamp": self._timestamp(), "asterisk_id": "fake"}

    def connecting(self, client: FakeAri) -> None:
        """A websocket opens on `client.app`: one app has one websocket, the newest (res_stasis),
        the one it replaces is told and closed."""
        for other in self._clients:
            if other is not client and other.app == client.app and other.connected:
                self.replacements.append((client.app, other.name, client.name, len(self.requests)))
                other.replaced()

    def _send(self, event: JSON, apps: set[str] | None) -> None:
        self.events.append(event)
        for trigger in list(self._triggers):
            if event["type"] == trigger.kind and (trigger.channel is None or trigger.channel in _ids(event)):
                trigger.nth -= 1
                if trigger.nth == 0:
                    self._triggers.remove(trigger)
                    asyncio.get_running_loop().call_soon(trigger.action)
        for client in self._clients:
            wanted = apps is None or client.app in apps
            if client.connected and wanted and event["type"] not in self.disallowed.get(client.app, ()):
                client.deliver({**event, "application": client.app})

    def emit(self, event: Mapping[str, Any], *, apps: Iterable[str] | None = None) -> JSON:
        """Send an event as Asterisk would (a test's own: DTMF, a state change, anything). It goes to
        the apps watching the channel it names (every app when it names none, or to `apps`), and the
        channel's callee script sees it."""
        sent: JSON = {"timestamp": self._timestamp(), "asterisk_id": "fake", **event}
        channel = self._channel_of(sent)
        if apps is not None:
            targets: set[str] | None = set(apps)
        elif channel is not None:
            targets = channel.watchers()
        else:
            targets = None
        self._send(sent, targets)
        if channel is not None and channel.callee is not None:
            channel.callee.react(sent)
        return sent

    def emit_about(
        self, channel: FakeChannel, kind: str, *, apps: set[str] | None = None, **fields: Any
    ) -> JSON:
        return self.emit({"type": kind, "channel": channel.json(), **fields}, apps=apps)

    def _channel_of(self, event: JSON) -> FakeChannel | None:
        for key in ("channel", "peer"):
            obj = event.get(key)
            if isinstance(obj, dict) and obj.get("id") in self.channels:
                return self.channels[obj["id"]]
        for key in ("playback", "recording"):
            obj = event.get(key)
            if isinstance(obj, dict):
                target = str(obj.get("target_uri", ""))
                if target.startswith("channel:") and target[8:] in self.channels:
                    return self.channels[target[8:]]
        return None

    # ---------------------------------------------------------- the far end and the dialplan

    def set_state(self, channel: FakeChannel, state: str) -> None:
        if channel.state != state:
            channel.state = state
            self.emit_about(channel, "ChannelStateChange")

    def answer_call(self, channel_id: str) -> None:
        """The callee picks up: Up, and into the app it was originated into (args as given)."""
        channel = self.channels.get(channel_id)
        if channel is None or channel.state == "Up":
            return
        self.set_state(channel, "Up")
        if channel.origin_app is not None and not channel.in_stasis:
            self.enter_stasis(channel_id, channel.origin_args, channel.origin_app)
        elif channel.context in self.dialplan:
            self.dialplan[channel.context](channel)
        if channel.callee is not None:
            channel.callee.answered()

    def enter_stasis(self, channel_id: str, args: Sequence[str], app: str = "warmline") -> None:
        """The dialplan runs Stasis(app,args...). With no client of `app` connected, Stasis()
        fails and the dialplan goes on to Hangup(), as in extensions.conf."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        if not any(c.connected and c.app == app for c in self._clients):
            self.end_channel(channel, 16)
            return
        channel.stasis_app = app
        channel.stasis_args = list(args)
        channel.app_name, channel.app_data = "Stasis", ",".join([app, *args])
        # Only the app entered hears it, as Asterisk's (not the others subscribed to the channel).
        self.emit_about(channel, "StasisStart", apps={app}, args=list(args))

    def _leave_stasis(self, channel: FakeChannel) -> None:
        if channel.stasis_app is None:
            return
        self.emit_about(channel, "StasisEnd", apps={channel.stasis_app})
        channel.stasis_app = None
        channel.origin_app = None  # entered once (`originated_for` still hears it outside Stasis)
        channel.app_name = channel.app_data = ""

    def press(self, channel_id: str, digits: str, *, between: float = 0.25) -> None:
        """The callee presses `digits` (one ChannelDtmfReceived each, `between` loop seconds apart)."""
        channel = self.channels.get(channel_id)
        if channel is None:
            return
        loop = asyncio.get_running_loop()
        for i, digit in enumerate(digits):

            def one(d: str = digit) -> None:
                if self.channels.get(channel_id) is channel:
                    self.emit_about(channel, "ChannelDtmfReceived", digit=d, duration_ms=100)

            if i == 0:
                one()
            else:
                loop.call_later(i * between, one)

    def hangup_by_callee(self, channel_id: str, cause: int = 16) -> None:
        channel = self.channels.get(channel_id)
        if channel is not None:
            self.end_channel(channel, cause)

    def end_channel(self, channel: FakeChannel, cause: int) -> None:
        """The channel hangs up (either end): ChannelHangupRequest, its playbacks and recordings
        end, it leaves its bridge and Stasis, ChannelDestroyed with `cause`."""
        if self.channels.get(channel.id) is not channel:
            return
        if channel.callee is not None:
            channel.callee.cancel()
        apps = channel.watchers()  # all of them hear the end, StasisEnd notwithstanding
        self.emit_about(channel, "ChannelHangupRequest", apps=apps, cause=cause)
        for playback in [p for p in self.playbacks.values() if p.target == channel.id]:
            # As Asterisk's res_stasis_playback: a playback cut by the hang-up ends "failed".
            self._finish_playback(playback, "failed" if playback.state == "playing" else "done", apps)
        for rec in [r for r in self.recordings.values() if r.target_uri == f"channel:{channel.id}"]:
            self._finish_recording(rec, "done")
        if channel.bridge is not None:
            self._leave_bridge(channel, self.bridges[channel.bridge])
        if channel.in_stasis:
            self._leave_stasis(channel)
        channel.state = "Down"
        del self.channels[channel.id]
        self.destroyed[channel.id] = cause
        self.emit_about(
            channel, "ChannelDestroyed", apps=apps, cause=cause, cause_txt=CAUSE_TEXT.get(cause, "")
        )

    def finish_playback(self, playback_id: str, state: str = "done") -> None:
        """End a playback now (with auto_finish_playbacks off, the test decides when)."""
        playback = self.playbacks.get(playback_id)
        if playback is not None:
            self._finish_playback(playback, state)

    def _finish_playback(self, playback: FakePlayback, state: str, apps: set[str] | None = None) -> None:
        if self.playbacks.pop(playback.id, None) is None:
            return
        if playback.handle is not None:
            playback.handle.cancel()
        playback.state = state
        self.emit({"type": "PlaybackFinished", "playback": playback.json()}, apps=apps)

    def _finish_recording(self, rec: FakeRecording, state: str) -> None:
        if self.recordings.pop(rec.name, None) is None:
            return
        if rec.handle is not None:
            rec.handle.cancel()
        rec.state = state
        self.emit(
            {"type": "RecordingFinished", "recording": rec.json()}, apps=self._watchers_of(rec.target_uri)
        )

    def _watchers_of(self, target_uri: str) -> set[str] | None:
        kind, _, some_id = target_uri.partition(":")
        if kind == "channel" and some_id in self.channels:
            return self.channels[some_id].watchers()
        if kind == "bridge" and some_id in self.bridges:
            return set(self.bridges[some_id].subscribed)
        return None

    def _leave_bridge(self, channel: FakeChannel, bridge: FakeBridge) -> None:
        bridge.channels.remove(channel.id)
        channel.bridge = None
        apps = channel.watchers() | bridge.subscribed
        self.emit(
            {"type": "ChannelLeftBridge", "bridge": bridge.json(), "channel": channel.json()}, apps=apps
        )

    def place(
        self,
        channel_id: str,
        endpoint: str,
        *,
        stage: Literal["ringing", "amd", "stasis"],
        callee: Callee | None = None,
        app: str = "warmline",
        args: Sequence[str] = ("dialer",),
        ring_timeout: float = 30.0,
    ) -> FakeChannel:
        """A channel that is already there (found after a restart): still ringing, answered and
        running AMD in the dialplan, or answered and sitting in Stasis with nobody driving it."""
        channel = self._new_channel(channel_id, endpoint, callee or self.script_for(endpoint))
        channel.origin_app, channel.origin_args, channel.dialplan_app = app, list(args), app
        assert channel.callee is not None
        if stage == "ringing":
            channel.callee.ring(ring_timeout)
            return channel
        channel.state = "Up"
        if stage == "amd":
            channel.origin_app = None
            channel.context, channel.exten, channel.app_name = AMD_CONTEXT, "s", "AMD"
            channel.callee.amd()
        else:
            channel.stasis_app, channel.stasis_args = app, list(args)
            channel.app_name, channel.app_data = "Stasis", ",".join([app, *args])
        return channel

    # ---------------------------------------------------------- restarts

    def restart(self) -> None:
        """Asterisk restarts: every channel is gone without a word (the socket was down), then
        every connected client reconnects and sees WarmlineReconnected."""
        self.stop()
        self.start()

    def stop(self) -> None:
        """Asterisk stops: channels, bridges, playbacks vanish; requests fail (ConnectError)."""
        self.up = False
        self.restarts += 1
        for channel in self.channels.values():
            if channel.callee is not None:
                channel.callee.cancel()
            self.destroyed[channel.id] = 0
        for handle in [p.handle for p in self.playbacks.values()] + [
            r.handle for r in self.recordings.values()
        ]:
            if handle is not None:
                handle.cancel()
        self.channels.clear()
        self.bridges.clear()
        self.playbacks.clear()
        self.recordings.clear()
        self.disallowed.clear()
        for client in self._clients:
            client.drop()

    def start(self) -> None:
        self.up = True
        if self._up_event is not None:
            self._up_event.set()
            self._up_event = None

    async def wait_up(self) -> None:
        while not self.up:
            if self._up_event is None:
                self._up_event = asyncio.Event()
            await self._up_event.wait()

    # ---------------------------------------------------------- REST

    def _new_channel(self, channel_id: str, endpoint: str, script: Callee | None) -> FakeChannel:
        serial = next(self._serial)
        tech = endpoint.split("/", 1)[0]
        name = f"{endpoint}-{serial:08x}" + (";1" if tech == "Local" else "")
        channel = FakeChannel(channel_id, name, endpoint, created=self._timestamp())
        channel.exten = endpoint.rsplit("/", 1)[-1].split("@", 1)[0]
        if script is not None:
            channel.callee = _CalleeRun(self, channel, script)
        self.channels[channel_id] = channel
        return channel

    async def handle(
        self, client: FakeAri, method: str, path: str, body: Mapping[str, Any] | None, params: JSON
    ) -> Any:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        op, target = _route(method, parts)
        given = {
            k: (list(v) if isinstance(v, list | tuple) else v) for k, v in params.items() if v is not None
        }
        request = Request(client.name, method, path, op, target, given, body)
        self.requests.append(request)
        try:
            if client.killed or not self.up:
                raise AriError(0, method, path, CONNECT_ERROR)
            stalled = client.stalled_until - asyncio.get_running_loop().time()
            if stalled > 0:
                await asyncio.sleep(stalled)
            await self._wait_delay(op)
            if client.killed or not self.up:
                raise AriError(0, method, path, READ_TIMEOUT)
            failure = self._failure(request)
            if failure is not None and not failure.placed:
                raise AriError(failure.status, method, path, failure.message)
            result = getattr(self, f"_op_{op}")(client, parts, given, body)
            if failure is not None:
                raise AriError(failure.status, method, path, failure.message)
            return result
        except AriError as exc:
            request.error = exc
            raise

    async def _wait_delay(self, op: str) -> None:
        for delay in self._delays:
            if delay.op != op or delay.times == 0:
                continue
            if delay.times is not None:
                delay.times -= 1
            if delay.gate is not None:
                await delay.gate.wait()
            else:
                await asyncio.sleep(delay.seconds)
            return

    def _failure(self, request: Request) -> _Failure | None:
        for failure in self._failures:
            if failure.op != request.op or failure.times == 0:
                continue
            if failure.when is not None and not failure.when(request):
                continue
            if failure.times is not None:
                failure.times -= 1
            return failure
        return None

    def _channel(self, channel_id: str, method: str, path: str, *, stasis: bool = False) -> FakeChannel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise AriError(404, method, path, "Channel not found")
        if stasis and not channel.in_stasis:
            raise AriError(409, method, path, "Channel not in Stasis application")
        return channel

    # The operations: one per AriClient method, named like it. (client, path parts, params, body).

    def _op_info(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        # A new startup time after every restart, as Asterisk's own.
        started = f"2026-01-01T00:00:00.000+0000 #{self.restarts}"
        return {
            "system": {"version": "22.0.0-fake", "entity_id": "fake"},
            "status": {"startup_time": started},
        }

    def _op_ping(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        return {"ping": "pong", "timestamp": self._timestamp(), "asterisk_id": "fake"}

    def _op_reload_module(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        return None

    def _op_get_global(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        return {"value": self.globals.get(str(params.get("variable", "")), "")}

    def _op_set_global(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        self.globals[str(params.get("variable", ""))] = str(params.get("value", ""))

    def _op_applications(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> list[JSON]:
        """Every app connected or with channels (a closed app stays while it has some)."""
        names = {c.app for c in self._clients if c.connected}
        for channel in self.channels.values():
            names |= channel.watchers()
        return [
            {
                "name": name,
                "channel_ids": [c.id for c in self.channels.values() if name in c.watchers()],
                "bridge_ids": [b.id for b in self.bridges.values() if name in b.subscribed],
                "endpoint_ids": [],
                "device_names": [],
            }
            for name in sorted(names)
        ]

    def _op_originate(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        endpoint = str(params.get("endpoint", ""))
        if not endpoint:
            raise AriError(400, "POST", "/channels", "Endpoint must be specified")
        channel_id = str(params.get("channelId") or uuid.uuid4().hex)
        if channel_id in self.channels:
            raise AriError(409, "POST", "/channels", "Channel with given unique ID already exists")
        channel = self._new_channel(channel_id, endpoint, self.script_for(endpoint))
        channel.caller_number = str(params.get("callerId") or "")
        channel.variables.update((body or {}).get("variables") or {})
        if "app" in params:
            channel.origin_app = channel.originated_for = str(params["app"])
            channel.dialplan_app = channel.variables.get("WL_APP") or channel.origin_app
            args = build_params({"a": params.get("appArgs")}).get("a", "")
            channel.origin_args = args.split(",") if args else []
        else:
            channel.context = str(params.get("context") or "default")
            channel.exten = str(params.get("extension") or "s")
            channel.priority = int(params.get("priority") or 1)
            channel.dialplan_app = channel.variables.get("WL_APP") or channel.dialplan_app
        timeout = float(params.get("timeout", 30))
        callee = channel.callee
        assert callee is not None
        asyncio.get_running_loop().call_soon(callee.ring, timeout)  # after the answer to this request
        return channel.json()

    def _op_channels(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> list[JSON]:
        return [c.json() for c in self.channels.values()]

    def _op_get_channel(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        return self._channel(parts[1], "GET", "/".join(parts)).json()

    def _op_hangup(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "DELETE", "/".join(parts))
        self.end_channel(channel, REASON_CAUSES.get(str(params.get("reason", "normal")), 16))

    def _op_answer(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "POST", "/".join(parts), stasis=True)
        self.set_state(channel, "Up")

    def _op_ring(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        self._channel(parts[1], "POST", "/".join(parts), stasis=True)

    def _op_send_dtmf(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        self._channel(parts[1], "POST", "/".join(parts), stasis=True)

    def _op_play(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        channel = self._channel(parts[1], "POST", "/".join(parts), stasis=True)
        playback_id = parts[3] if len(parts) > 3 else uuid.uuid4().hex
        if playback_id in self.playbacks:
            raise AriError(409, "POST", "/".join(parts), "Playback with given id already exists")
        media = params.get("media", [])
        playback = FakePlayback(playback_id, [media] if isinstance(media, str) else list(media), channel.id)
        self.playbacks[playback_id] = playback
        asyncio.get_running_loop().call_soon(self._start_playback, playback)
        return playback.json()

    def _start_playback(self, playback: FakePlayback) -> None:
        if self.playbacks.get(playback.id) is not playback:
            return
        playback.state = "playing"
        self.emit({"type": "PlaybackStarted", "playback": playback.json()})
        if self.auto_finish_playbacks and self.playbacks.get(playback.id) is playback:
            loop = asyncio.get_running_loop()
            playback.handle = loop.call_later(
                self._play_seconds(playback.media), lambda: self._finish_playback(playback, "done")
            )

    def _play_seconds(self, media: list[str]) -> float:
        if self.play_seconds is not None:
            return self.play_seconds
        total = 0.0
        for uri in media:
            path = Path(uri.removeprefix("sound:") + ".wav")
            total += wav_seconds(path) if uri.startswith("sound:/") and path.exists() else 1.0
        return total

    def _op_get_playback(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        playback = self.playbacks.get(parts[1])
        if playback is None:
            raise AriError(404, "GET", "/".join(parts), "Playback not found")
        return playback.json()

    def _op_stop_playback(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        playback = self.playbacks.get(parts[1])
        if playback is None:
            raise AriError(404, "DELETE", "/".join(parts), "Playback not found")
        self._finish_playback(playback, "done")

    def _op_get_variable(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        channel = self._channel(parts[1], "GET", "/".join(parts))
        name = str(params.get("variable", ""))
        if name not in channel.variables:
            raise AriError(404, "GET", "/".join(parts), "Provided variable was not found")
        return {"value": channel.variables[name]}

    def _op_set_variable(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "POST", "/".join(parts))
        name = str(params.get("variable", ""))
        channel.variables[name] = str(params.get("value", ""))
        if name == "TALK_DETECT(set)" and not channel.talk_detect:
            channel.talk_detect = True
            if channel.callee is not None:
                channel.callee.talk_detection()

    def _op_continue_in_dialplan(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "POST", "/".join(parts), stasis=True)
        self._leave_stasis(channel)
        channel.context = str(params.get("context") or channel.context)
        channel.exten = str(params.get("extension") or "s")
        channel.priority = int(params.get("priority") or 1)
        # The app the dialplan's Stasis() enters: WL_APP, else {{ app }} (here: the client's).
        channel.dialplan_app = channel.variables.get("WL_APP") or client.app
        if channel.context == AMD_CONTEXT:
            channel.app_name = "AMD"
            if channel.callee is not None:
                channel.callee.amd()

    def _op_snoop(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        channel = self._channel(parts[1], "POST", "/".join(parts))
        snoop_id = parts[3] if len(parts) > 3 else uuid.uuid4().hex
        snoop = self._new_channel(snoop_id, f"Snoop/{channel.id}", None)
        snoop.state = "Up"
        args = str(params.get("appArgs") or "")
        app = str(params.get("app") or client.app)
        self.enter_stasis(snoop_id, args.split(",") if args else [], app)
        return snoop.json()

    def _record(self, target_uri: str, parts: list[str], params: JSON) -> JSON:
        name = str(params.get("name", ""))
        if name in self.recordings and params.get("ifExists", "fail") == "fail":
            raise AriError(409, "POST", "/".join(parts), "Recording with the same name is in progress")
        rec = FakeRecording(name, str(params.get("format", "wav")), target_uri)
        self.recordings[name] = rec
        if self.on_record is not None:
            self.on_record(rec)
        self.emit({"type": "RecordingStarted", "recording": rec.json()}, apps=self._watchers_of(target_uri))
        max_seconds = float(params.get("maxDurationSeconds") or 0)
        if max_seconds > 0:
            rec.handle = asyncio.get_running_loop().call_later(
                max_seconds, lambda: self._finish_recording(rec, "done")
            )
        return rec.json()

    def _op_record_channel(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        channel = self._channel(parts[1], "POST", "/".join(parts), stasis=True)
        return self._record(f"channel:{channel.id}", parts, params)

    def _op_record_bridge(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        if parts[1] not in self.bridges:
            raise AriError(404, "POST", "/".join(parts), "Bridge not found")
        return self._record(f"bridge:{parts[1]}", parts, params)

    def _op_stop_recording(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        rec = self.recordings.get(parts[2])
        if rec is None:
            raise AriError(404, "POST", "/".join(parts), "Recording not found")
        self._finish_recording(rec, "done")

    def _op_create_bridge(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        bridge_id = str(params.get("bridgeId") or uuid.uuid4().hex)
        if bridge_id in self.bridges:
            raise AriError(409, "POST", "/bridges", "Bridge with given id already exists")
        bridge = FakeBridge(bridge_id, str(params.get("name") or ""), str(params.get("type", "mixing")))
        bridge.subscribed.add(client.app)
        self.bridges[bridge_id] = bridge
        self.emit({"type": "BridgeCreated", "bridge": bridge.json()}, apps={client.app})
        return bridge.json()

    def _op_bridges(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> list[JSON]:
        return [b.json() for b in self.bridges.values()]

    def _op_get_bridge(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> JSON:
        return self._bridge(parts, "GET").json()

    def _bridge(self, parts: list[str], method: str) -> FakeBridge:
        bridge = self.bridges.get(parts[1])
        if bridge is None:
            raise AriError(404, method, "/".join(parts), "Bridge not found")
        return bridge

    def _channel_list(self, params: JSON, parts: list[str]) -> list[FakeChannel]:
        ids = build_params({"c": params.get("channel")}).get("c", "")
        found = []
        for channel_id in filter(None, ids.split(",")):
            channel = self.channels.get(channel_id)
            if channel is None:
                raise AriError(400, "POST", "/".join(parts), "Channel not found")
            if not channel.in_stasis:
                raise AriError(422, "POST", "/".join(parts), "Channel not in Stasis application")
            found.append(channel)
        return found

    def _op_add_channel(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        bridge = self._bridge(parts, "POST")
        for channel in self._channel_list(params, parts):
            if channel.bridge == bridge.id:
                continue
            if channel.bridge is not None:
                self._leave_bridge(channel, self.bridges[channel.bridge])
            bridge.channels.append(channel.id)
            channel.bridge = bridge.id
            apps = channel.watchers() | bridge.subscribed
            self.emit(
                {"type": "ChannelEnteredBridge", "bridge": bridge.json(), "channel": channel.json()},
                apps=apps,
            )

    def _op_remove_channel(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        bridge = self._bridge(parts, "POST")
        for channel in self._channel_list(params, parts):
            if channel.bridge != bridge.id:
                raise AriError(422, "POST", "/".join(parts), "Channel not in this bridge")
            self._leave_bridge(channel, bridge)

    def _op_destroy_bridge(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        bridge = self._bridge(parts, "DELETE")
        for channel_id in list(bridge.channels):
            self._leave_bridge(self.channels[channel_id], bridge)
        del self.bridges[bridge.id]
        self.emit({"type": "BridgeDestroyed", "bridge": bridge.json()}, apps=set(bridge.subscribed))

    def _op_start_moh(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "POST", "/".join(parts), stasis=True)
        channel.moh = str(params.get("mohClass") or "default")

    def _op_stop_moh(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        channel = self._channel(parts[1], "DELETE", "/".join(parts), stasis=True)
        channel.moh = None

    def _op_subscribe(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        kind, _, some_id = str(params.get("eventSource", "")).partition(":")
        if kind == "channel" and some_id in self.channels:
            self.channels[some_id].subscribed.add(parts[1])
        elif kind == "bridge" and some_id in self.bridges:
            self.bridges[some_id].subscribed.add(parts[1])
        else:
            raise AriError(422, "POST", "/".join(parts), "Event source does not exist")

    def _op_filter_events(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        disallowed = (body or {}).get("disallowed") or []
        self.disallowed[parts[1]] = frozenset(str(item.get("type")) for item in disallowed)

    def _op_unknown(self, client: FakeAri, parts: list[str], params: JSON, body: Any) -> None:
        raise AriError(404, "?", "/".join(parts), "Resource not found (not in the fake)")


def _route(method: str, parts: list[str]) -> tuple[str, str | None]:
    """(operation, the channel/bridge/playback/recording it is about) for an ARI path."""
    n = len(parts)
    head = parts[0] if parts else ""
    target = parts[1] if n > 1 and head != "asterisk" else None
    if head == "asterisk":
        if n > 1 and parts[1] == "variable":
            return ("get_global" if method == "GET" else "set_global"), None
        return {"info": "info", "ping": "ping", "modules": "reload_module"}.get(
            parts[1] if n > 1 else "", "unknown"
        ), None
    if head == "applications" and n == 1 and method == "GET":
        return "applications", None
    if head == "channels":
        if n == 1:
            return ("originate" if method == "POST" else "channels"), None
        if n == 2:
            return {"GET": "get_channel", "DELETE": "hangup"}.get(method, "unknown"), target
        action = parts[2]
        if action == "variable":
            return ("get_variable" if method == "GET" else "set_variable"), target
        if action == "moh":
            return ("start_moh" if method == "POST" else "stop_moh"), target
        if action == "record":
            return "record_channel", target
        if action == "dtmf":
            return "send_dtmf", target
        if action == "continue":
            return "continue_in_dialplan", target
        if action in ("answer", "ring", "play", "snoop") and method == "POST":
            return action, target
        return "unknown", target
    if head == "playbacks" and n == 2:
        return {"GET": "get_playback", "DELETE": "stop_playback"}.get(method, "unknown"), target
    if head == "bridges":
        if n == 1:
            return ("create_bridge" if method == "POST" else "bridges"), None
        if n == 2:
            return {"DELETE": "destroy_bridge", "GET": "get_bridge"}.get(method, "unknown"), target
        return {
            "addChannel": "add_channel",
            "removeChannel": "remove_channel",
            "record": "record_bridge",
        }.get(parts[2], "unknown"), target
    if head == "recordings" and n == 4 and parts[1] == "live" and parts[3] == "stop":
        return "stop_recording", parts[2]
    if head == "applications" and n == 3 and parts[2] == "subscription" and method == "POST":
        return "subscribe", None
    if head == "applications" and n == 3 and parts[2] == "eventFilter" and method == "PUT":
        return "filter_events", None
    return "unknown", target


def _ids(event: JSON) -> set[str]:
    found: set[str] = set()
    for key in ("channel", "peer", "bridge"):
        obj = event.get(key)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            found.add(obj["id"])
    for key in ("playback", "recording"):
        obj = event.get(key)
        if isinstance(obj, dict) and ":" in str(obj.get("target_uri", "")):
            found.add(str(obj["target_uri"]).split(":", 1)[1])
    return found


# ------------------------------------------------------------------ the client


class _Dropped:
    """Put in a client's queue when its socket drops: the stream reconnects."""


class FakeAri(AriClient):
    """An AriClient of a FakeAsterisk: the real client's methods, this `request()` and `events()`."""

    def __init__(self, asterisk: FakeAsterisk, app: str, name: str) -> None:
        # No super().__init__(): there is no HTTP client to make. What the base class reads is set here.
        self.asterisk = asterisk
        self.app = app
        self.name = name
        self.base_url = "fake://asterisk/ari"
        self.user = "fake"
        self._password = ""
        self.connected = False
        self.killed = False
        self.closed = False
        self.stalled_until = -1e18  # loop time until which this process's requests hang (`stall`)
        self.lag = 0.0  # loop seconds the event socket runs behind HTTP answers (a busy server)
        self._queue: asyncio.Queue[JSON | _Dropped] = asyncio.Queue()
        self._late: deque[tuple[float, JSON]] = deque()  # (due, event), in the order sent
        self._streams: dict[str, FakeAri] = {}  # another app's websocket (`events(app=...)`)

    async def aclose(self) -> None:
        self.closed = True

    async def request(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None, **params: ParamValue
    ) -> Any:
        return await self.asterisk.handle(self, method, path, body, dict(params))

    @property
    def requests(self) -> list[Request]:
        return [r for r in self.asterisk.requests if r.client == self.name]

    def deliver(self, event: JSON) -> None:
        if self.lag <= 0 and not self._late:
            self._queue.put_nowait(event)
            return
        loop = asyncio.get_running_loop()
        self._late.append((loop.time() + self.lag, event))
        loop.call_later(self.lag, self._deliver_due)

    def _deliver_due(self) -> None:
        now = asyncio.get_running_loop().time()
        while self._late and self._late[0][0] <= now and self.connected:
            self._queue.put_nowait(self._late.popleft()[1])

    def drop(self) -> None:
        """The websocket drops (Asterisk stopped): undelivered events stay lost, the stream
        reconnects once Asterisk is up."""
        for stream in self._streams.values():
            stream.drop()
        if self.connected:
            self.connected = False
            self._late.clear()
            self._queue.put_nowait(_Dropped())

    def kill(self) -> None:
        """The process holding this client died: no request of it reaches Asterisk any more, and
        its event stream goes silent for good."""
        self.killed = True
        for stream in self._streams.values():
            stream.killed = True
        self.drop()

    def stall(self, seconds: float) -> None:
        """The process behind this client stalls (ARI slow for it, a long pause): its requests,
        heartbeat included, hang for `seconds`, then go on; its sockets stay open."""
        until = asyncio.get_running_loop().time() + seconds
        for client in (self, *self._streams.values()):
            client.stalled_until = until

    def replaced(self) -> None:
        """Another websocket opened on this client's app: Asterisk sends ``ApplicationReplaced``
        to this one, which stays open and gets nothing more (tests/integration/test_replaced_lab.py)."""
        if not self.connected:
            return
        self.deliver({"type": "ApplicationReplaced", "application": self.app, **self.asterisk.stamp()})
        self.connected = False

    def _stream(self, app: str) -> FakeAri:
        """The websocket of another app this client reads (same name, same process)."""
        stream = self._streams.get(app)
        if stream is None:
            stream = self._streams[app] = self.asterisk.client(app, self.name)
        stream.killed, stream.lag, stream.stalled_until = self.killed, self.lag, self.stalled_until
        return stream

    async def events(
        self,
        *,
        subscribe_all: bool = False,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        app: str | None = None,
    ) -> AsyncGenerator[JSON, None]:
        if app is not None and app != self.app:
            async for other in self._stream(app).events():
                yield other
            return
        first = True
        try:
            while True:
                if self.killed:
                    await asyncio.Future()  # silent for good; cancellation ends it
                await self.asterisk.wait_up()
                while not self._queue.empty():  # what was queued before the drop is gone with the socket
                    self._queue.get_nowait()
                self.asterisk.connecting(self)
                self.connected = True
                yield {"type": CONNECTED if first else RECONNECTED, "application": self.app}
                first = False
                while True:
                    event = await self._queue.get()
                    if isinstance(event, _Dropped):
                        break
                    yield event
        finally:
            self.connected = False


async def settle(rounds: int = 5) -> None:
    """Let every ready callback run (a few loop turns), without moving the clock."""
    for _ in range(rounds):
        await asyncio.sleep(0)


__all__ = [
    "AMD_CONTEXT",
    "BUSY",
    "CONGESTION",
    "LISTENER",
    "MACHINE",
    "NO_ANSWER",
    "Callee",
    "FakeAri",
    "FakeAsterisk",
    "FakeChannel",
    "Request",
    "confirms",
    "settle",
]
