"""The SIP engine: pjsua2 owned by one thread, driven from asyncio.

pjsua2 is not thread-safe in the ways Python would like, so exactly one thread ("pjsua2") creates
the library with `threadCnt=0` and `mainThreadOnly=True`, polls `libHandleEvents`, runs every
command from a job queue and fires every callback. asyncio code talks to it through `Engine`:
awaitable commands (each one a job whose result comes back as a future) and one event stream.

Lifetimes, the pjsua2 pitfalls DESIGN.md names:

- every live `SoftCall` is referenced from `_calls` (a collected `Call` hangs up whatever call has
  its id by then); a disconnected call is dropped only after its callback has returned;
- calls, players, recorders and media ports are deleted before `libDestroy()`.

Media wiring: whenever a call's audio becomes active it is connected to what the engine has — the
sound bridge (headset) if attached, else the looping player (`play`), plus a per-call recorder
(`record_dir`, files named by UUID, never by number). Mute is the level of audio sent into the call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pjsua2 as pj

from softphone.account import SipAccountSettings, SoftAccount, build_account_config, tls_config
from softphone.calls import SoftCall, display_of, warmline_headers
from softphone.events import (
    CallStateChanged,
    EngineEvent,
    EngineStopped,
    IncomingCall,
    RegistrationChanged,
)
from softphone.quality import StreamSample, sample_from_stat

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CODECS = ("G722", "PCMU", "PCMA")
POLL_MS = 10


class EngineError(RuntimeError):
    """A command the engine could not carry out; the message says which and why."""


@dataclass(frozen=True)
class EngineConfig:
    headless: bool = True  # null sound device: the media clock runs, no hardware needed
    user_agent: str = "warmline-softphone/0.1"
    codecs: tuple[str, ...] = DEFAULT_CODECS  # in order of preference; others are disabled
    sip_port: int = 0  # 0: any free port
    bind_address: str = ""
    rtp_port: int = 0  # 0: pjsua's default (4000 upwards)
    play_file: Path | None = None
    record_dir: Path | None = None
    log_level: int = 1
    clock_rate: int = 16000


class MediaSink(Protocol):
    """Something on the pjsua2 thread that can be connected to a call's audio (the sound bridge)."""

    def connect(self, call_audio: Any) -> None: ...
    def disconnect(self, call_audio: Any) -> None: ...
    def create(self) -> None: ...
    def destroy(self) -> None: ...


@dataclass
class CallSnapshot:
    call: int
    remote: str
    state: str
    muted: bool
    held: bool
    recording: Path | None


class _PjLog(pj.LogWriter):  # type: ignore[misc]
    def write(self, entry: Any) -> None:
        level = int(entry.level)
        log.log(logging.WARNING if level <= 1 else logging.DEBUG, "pj: %s", str(entry.msg).rstrip())


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


class PjThread:
    """The one thread that owns pjsua2. Everything pjsua2 happens in `_run`."""

    def __init__(self, config: EngineConfig, emit: Callable[[EngineEvent], None]) -> None:
        self.config = config
        self._emit_out = emit
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, name="pjsua2", daemon=True)
        self._stopping = False
        self.ep: Any = None
        self.accounts: dict[str, SoftAccount] = {}
        self.account_settings: dict[str, SipAccountSettings] = {}
        self.calls: dict[int, SoftCall] = {}
        self.recorders: dict[int, Any] = {}
        self.recording_paths: dict[int, Path] = {}
        self.last_stats: dict[int, StreamSample] = {}
        self.player: Any = None
        self.sink: MediaSink | None = None
        self._graveyard: list[SoftCall] = []
        self._log_writer: Any = None

    # -- called from other threads ---------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._ready.result(timeout)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        if self._stopping or not self._thread.is_alive():
            raise EngineError("the SIP engine is not running")
        job = _Job(fn)
        self._jobs.put(job)
        return job.future

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self._jobs.put(None)
        self._thread.join(timeout)

    # -- the pjsua2 thread -----------------------------------------------------------------

    def emit(self, event: EngineEvent) -> None:
        if isinstance(event, CallStateChanged) and event.state == "disconnected":
            call = self.calls.get(event.call)
            if call is not None:
                self._graveyard.append(call)
        self._emit_out(event)

    def _run(self) -> None:
        try:
            self._init()
        except BaseException as exc:
            self._ready.set_exception(EngineError(f"pjsua2 did not start: {exc}"))
            return
        self._ready.set_result(None)
        try:
            while True:
                if not self._drain_jobs():
                    break
                self.ep.libHandleEvents(POLL_MS)
                self._bury()
        finally:
            self._shutdown()

    def _init(self) -> None:
        c = self.config
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = c.user_agent
        cfg.uaConfig.maxCalls = 8
        self._log_writer = _PjLog()
        cfg.logConfig.writer = self._log_writer
        cfg.logConfig.level = c.log_level
        cfg.logConfig.consoleLevel = 0
        cfg.logConfig.decor = 0
        cfg.medConfig.clockRate = c.clock_rate
        cfg.medConfig.sndClockRate = c.clock_rate
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0  # no echo canceller in the bridge: a headset is assumed
        ep.libInit(cfg)
        self.ep = ep
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP, pj.PJSIP_TRANSPORT_TLS):
            tcfg = pj.TransportConfig()
            tcfg.port = c.sip_port if kind != pj.PJSIP_TRANSPORT_TLS or not c.sip_port else c.sip_port + 1
            if c.bind_address:
                tcfg.boundAddress = c.bind_address
            try:
                ep.transportCreate(kind, tcfg)
            except pj.Error as exc:
                log.warning("SIP transport %s not available: %s", kind, exc.info())
        if c.headless:
            ep.audDevManager().setNullDev()
        else:
            ep.audDevManager().setNoDev()  # the sound bridge (AudioMediaPort) carries the audio
        self._set_codecs(c.codecs)
        ep.libStart()
        if c.play_file is not None:
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(str(c.play_file), 0)  # loops: a long call keeps hearing it

    def _set_codecs(self, preferred: tuple[str, ...]) -> None:
        wanted = [p.upper() for p in preferred]
        for info in self.ep.codecEnum2():
            name = str(info.codecId).split("/", 1)[0].upper()
            priority = 255 - wanted.index(name) if name in wanted else 0
            self.ep.codecSetPriority(str(info.codecId), priority)

    def _drain_jobs(self) -> bool:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return True
            if job is None:
                return False
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.fn())
            except pj.Error as exc:
                job.future.set_exception(EngineError(f"{exc.title}: {exc.reason} ({exc.status})"))
            except BaseException as exc:
                job.future.set_exception(exc)

    def _bury(self) -> None:
        """Drop calls that ended, after their callbacks have returned (never inside one)."""
        while self._graveyard:
            call = self._graveyard.pop()
            cid = next((k for k, v in self.calls.items() if v is call), None)
            if cid is not None:
                del self.calls[cid]
                if call.last_stats is not None:
                    self.last_stats[cid] = call.last_stats
            recorder = self.recorders.pop(cid, None) if cid is not None else None
            del recorder  # closes the WAV file (header written)
            del call

    def _shutdown(self) -> None:
        ep = self.ep
        if ep is None:
            return
        try:
            with contextlib.suppress(pj.Error):
                ep.hangupAllCalls()
            for account in self.accounts.values():
                with contextlib.suppress(pj.Error):
                    account.setRegistration(False)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                ep.libHandleEvents(POLL_MS)
            self._graveyard.extend(self.calls.values())
            self._bury()
            self.calls.clear()
            self.recorders.clear()
            self.player = None
            if self.sink is not None:
                self.sink.destroy()
                self.sink = None
            for account in self.accounts.values():
                with contextlib.suppress(pj.Error):
                    account.shutdown()
            self.accounts.clear()
        finally:
            with contextlib.suppress(pj.Error):
                ep.libDestroy()
            self.ep = None
            self._emit_out(EngineStopped("engine closed"))

    # -- commands (run as jobs) --------------------------------------------------------------

    def add_account(self, settings: SipAccountSettings) -> str:
        name = settings.username
        if name in self.accounts:
            raise EngineError(f"account {name} is already registered")
        account = SoftAccount(name, self.emit, self._incoming)
        cfg = build_account_config(settings)
        if settings.transport == "tls":
            # Its own TLS transport, verifying the server with the CA the account trusts.
            tcfg = tls_config(settings)
            if self.config.bind_address:
                tcfg.boundAddress = self.config.bind_address
            cfg.sipConfig.transportId = self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tcfg)
        if self.config.rtp_port:
            cfg.mediaConfig.transportConfig.port = self.config.rtp_port
        account.create(cfg, True)
        self.accounts[name] = account
        self.account_settings[name] = settings
        return name

    def remove_account(self, name: str) -> None:
        account = self.accounts.pop(name, None)
        self.account_settings.pop(name, None)
        if account is not None:
            with contextlib.suppress(pj.Error):
                account.setRegistration(False)
            account.shutdown()

    def reregister(self, name: str) -> None:
        self._account(name).setRegistration(True)

    def _account(self, name: str | None) -> SoftAccount:
        if name is None and len(self.accounts) == 1:
            return next(iter(self.accounts.values()))
        account = self.accounts.get(name or "")
        if account is None:
            raise EngineError(f"no account {name!r}")
        return account

    def _incoming(self, account: SoftAccount, prm: Any) -> None:
        call = SoftCall(account, self.emit, self._media_active, prm.callId)
        cid = call.cid
        self.calls[cid] = call
        message = str(prm.rdata.wholeMsg)
        remote = display_of(str(call.getInfo().remoteUri))
        call.remote = remote
        self.emit(IncomingCall(call=cid, remote=remote, headers=warmline_headers(message)))

    def call(self, cid: int) -> SoftCall:
        call = self.calls.get(cid)
        if call is None or call.ended:
            raise EngineError(f"no call {cid} (it may have ended)")
        return call

    def make_call(self, target: str, headers: dict[str, str], account: str | None) -> int:
        acc = self._account(account)
        settings = self.account_settings[acc.name]
        call = SoftCall(acc, self.emit, self._media_active)
        prm = pj.CallOpParam(True)
        for name, value in headers.items():
            h = pj.SipHeader()
            h.hName, h.hValue = f"X-Warmline-{name}", value
            prm.txOption.headers.append(h)
        call.makeCall(settings.target_uri(target), prm)
        self.calls[call.cid] = call
        return int(call.cid)

    def answer(self, cid: int, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        self.call(cid).answer(prm)

    def hangup(self, cid: int, code: int) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = code
        self.call(cid).hangup(prm)

    def hold(self, cid: int) -> None:
        call = self.call(cid)
        call.setHold(pj.CallOpParam(True))
        call.held = True

    def unhold(self, cid: int) -> None:
        call = self.call(cid)
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(prm)
        call.held = False

    def set_mute(self, cid: int, muted: bool) -> None:
        call = self.call(cid)
        call.muted = muted
        self._apply_mute(call)

    def _apply_mute(self, call: SoftCall) -> None:
        with contextlib.suppress(pj.Error):
            call.getAudioMedia(-1).adjustRxLevel(0.0 if call.muted else 1.0)

    def send_dtmf(self, cid: int, digits: str) -> None:
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        self.call(cid).sendDtmf(prm)

    def transfer(self, cid: int, target: str) -> None:
        call = self.call(cid)
        settings = self.account_settings[self._account_of(call)]
        call.xfer(settings.target_uri(target), pj.CallOpParam(True))

    def attended_transfer(self, cid: int, to_cid: int) -> None:
        prm = pj.CallOpParam(True)
        prm.options = 0
        self.call(cid).xferReplaces(self.call(to_cid), prm)

    def _account_of(self, call: SoftCall) -> str:
        acc_id = int(call.getInfo().accId)
        for name, account in self.accounts.items():
            if int(account.getId()) == acc_id:
                return name
        raise EngineError("the call's account is gone")

    def stats(self, cid: int) -> StreamSample | None:
        call = self.calls.get(cid)
        if call is None:
            return self.last_stats.get(cid)
        try:
            stat = call.getStreamStat(0)
            info = call.getStreamInfo(0)
        except pj.Error:
            return self.last_stats.get(cid)
        sample = sample_from_stat(stat, f"{info.codecName}/{info.codecClockRate}")
        self.last_stats[cid] = sample
        return sample

    def attach_sink(self, sink: MediaSink | None) -> None:
        if self.sink is not None:
            for call in self.calls.values():
                with contextlib.suppress(pj.Error):
                    self.sink.disconnect(call.getAudioMedia(-1))
            self.sink.destroy()
        self.sink = sink
        if sink is not None:
            sink.create()
            for call in self.calls.values():
                with contextlib.suppress(pj.Error):
                    if call.hasMedia():
                        sink.connect(call.getAudioMedia(-1))

    def snapshot(self) -> list[CallSnapshot]:
        return [
            CallSnapshot(
                cid, c.remote, "ended" if c.ended else "live", c.muted, c.held, self.recording_paths.get(cid)
            )
            for cid, c in self.calls.items()
        ]

    def _media_active(self, call: SoftCall, audio: Any) -> None:
        """Connect a call whose audio just became active (again, after a hold) to our media."""
        if self.sink is not None:
            self.sink.connect(audio)
        elif self.player is not None:
            self.player.startTransmit(audio)
        elif self.config.headless:
            # Nothing to say: the null device's silence keeps RTP flowing. With no source at all
            # pjsua sends no packets, and Asterisk hangs up an agent's leg after 15 s without RTP
            # (rtp_timeout): a headless agent's open line was cut between every two callees.
            self.ep.audDevManager().getCaptureDevMedia().startTransmit(audio)
        record_dir = self.config.record_dir
        if record_dir is not None and call.cid not in self.recorders:
            record_dir.mkdir(parents=True, exist_ok=True)
            path = record_dir / f"{uuid.uuid4()}.wav"
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(path))
            self.recorders[call.cid] = recorder
            self.recording_paths[call.cid] = path
        recorder = self.recorders.get(call.cid)
        if recorder is not None:
            audio.startTransmit(recorder)
        self._apply_mute(call)


class Engine:
    """The asyncio face of the engine. Commands are awaitable; events come from `events()`."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self._thread: PjThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: list[asyncio.Queue[EngineEvent | None]] = []

    # -- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = PjThread(self.config, self._from_thread)
        await asyncio.to_thread(self._thread.start)

    async def close(self) -> None:
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.to_thread(thread.stop)
        for q in self._subscribers:
            q.put_nowait(None)

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- events ------------------------------------------------------------------------------

    def _from_thread(self, event: EngineEvent) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self._fan_out, event)

    def _fan_out(self, event: EngineEvent) -> None:
        for q in self._subscribers:
            q.put_nowait(event)

    def subscribe(self) -> asyncio.Queue[EngineEvent | None]:
        """A queue that receives every event from now on (None when the engine closes)."""
        q: asyncio.Queue[EngineEvent | None] = asyncio.Queue()
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[EngineEvent | None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(q)

    async def events(self) -> AsyncIterator[EngineEvent]:
        q = self.subscribe()
        try:
            while (event := await q.get()) is not None:
                yield event
        finally:
            self.unsubscribe(q)

    # -- commands ----------------------------------------------------------------------------

    async def _run(self, fn: Callable[[PjThread], T]) -> T:
        thread = self._thread
        if thread is None:
            raise EngineError("the SIP engine is not running")
        return await asyncio.wrap_future(thread.submit(lambda: fn(thread)))

    async def register(self, settings: SipAccountSettings) -> str:
        return await self._run(lambda t: t.add_account(settings))

    async def unregister(self, account: str) -> None:
        await self._run(lambda t: t.remove_account(account))

    async def reregister(self, account: str) -> None:
        await self._run(lambda t: t.reregister(account))

    async def make_call(
        self, target: str, *, headers: dict[str, str] | None = None, account: str | None = None
    ) -> int:
        return await self._run(lambda t: t.make_call(target, headers or {}, account))

    async def answer(self, call: int, code: int = 200) -> None:
        await self._run(lambda t: t.answer(call, code))

    async def hangup(self, call: int, code: int = 0) -> None:
        await self._run(lambda t: t.hangup(call, code))

    async def hold(self, call: int) -> None:
        await self._run(lambda t: t.hold(call))

    async def unhold(self, call: int) -> None:
        await self._run(lambda t: t.unhold(call))

    async def set_mute(self, call: int, muted: bool) -> None:
        await self._run(lambda t: t.set_mute(call, muted))

    async def send_dtmf(self, call: int, digits: str) -> None:
        if not digits or any(d not in "0123456789*#ABCD" for d in digits.upper()):
            raise EngineError(f"not DTMF digits: {digits!r}")
        await self._run(lambda t: t.send_dtmf(call, digits.upper()))

    async def transfer(self, call: int, target: str) -> None:
        await self._run(lambda t: t.transfer(call, target))

    async def attended_transfer(self, call: int, to_call: int) -> None:
        await self._run(lambda t: t.attended_transfer(call, to_call))

    async def stats(self, call: int) -> StreamSample | None:
        return await self._run(lambda t: t.stats(call))

    async def attach_sink(self, sink: MediaSink | None) -> None:
        await self._run(lambda t: t.attach_sink(sink))

    async def snapshot(self) -> list[CallSnapshot]:
        return await self._run(lambda t: t.snapshot())

    async def recording_of(self, call: int) -> Path | None:
        return await self._run(lambda t: t.recording_paths.get(call))


__all__ = [
    "CallSnapshot",
    "Engine",
    "EngineConfig",
    "EngineError",
    "IncomingCall",
    "MediaSink",
    "RegistrationChanged",
]
