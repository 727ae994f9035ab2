"""A simulated engine with the real engine's interface: for UI work, practice and tests.

It answers to the same commands as `softphone.engine.Engine` and produces the same events, so the
phone and its UI cannot tell the difference. `ring()` and `remote_hangup()` play the far end.
"""

from __future__ import annotations

import asyncio
import itertools

from softphone.account import SipAccountSettings
from softphone.events import (
    CallStateChanged,
    DtmfReceived,
    EngineEvent,
    IncomingCall,
    MediaChanged,
    RegistrationChanged,
    TransferProgress,
)
from softphone.quality import StreamSample


class FakeEngine:
    def __init__(self) -> None:
        self._subs: list[asyncio.Queue[EngineEvent | None]] = []
        self._ids = itertools.count()
        self.live: set[int] = set()
        self.sent_dtmf: list[str] = []
        self.transfers: list[tuple[int, str]] = []
        self.log: list[str] = []

    def subscribe(self) -> asyncio.Queue[EngineEvent | None]:
        q: asyncio.Queue[EngineEvent | None] = asyncio.Queue()
        self._subs.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[EngineEvent | None]) -> None:
        if q in self._subs:
            self._subs.remove(q)

    def emit(self, event: EngineEvent) -> None:
        for q in self._subs:
            q.put_nowait(event)

    async def register(self, settings: SipAccountSettings) -> str:
        self.emit(RegistrationChanged(settings.username, True, 200, "OK", 120))
        return settings.username

    async def unregister(self, account: str) -> None:
        self.emit(RegistrationChanged(account, False, 200, "unregistered", 0))

    async def reregister(self, account: str) -> None:
        self.emit(RegistrationChanged(account, True, 200, "OK", 120))

    # -- the far end -----------------------------------------------------------------------

    def ring(self, remote: str = "13800138000", headers: dict[str, str] | None = None) -> int:
        cid = next(self._ids)
        self.live.add(cid)
        self.emit(IncomingCall(cid, remote, headers or {}))
        self.emit(CallStateChanged(cid, "incoming", 100, "Trying", remote))
        return cid

    def remote_hangup(self, cid: int) -> None:
        self._end(cid, 200, "Normal call clearing")

    def remote_dtmf(self, cid: int, digit: str) -> None:
        self.emit(DtmfReceived(cid, digit))

    def _end(self, cid: int, code: int, reason: str) -> None:
        if cid in self.live:
            self.live.discard(cid)
            self.emit(CallStateChanged(cid, "disconnected", code, reason))

    # -- commands ----------------------------------------------------------------------------

    async def make_call(
        self, target: str, *, headers: dict[str, str] | None = None, account: str | None = None
    ) -> int:
        cid = next(self._ids)
        self.live.add(cid)
        self.emit(CallStateChanged(cid, "calling", 0, "", target))

        async def answer_later() -> None:
            await asyncio.sleep(0.2)
            self.emit(CallStateChanged(cid, "confirmed", 200, "OK", target))
            self.emit(MediaChanged(cid, "active", "G722/16000"))

        asyncio.get_running_loop().create_task(answer_later())
        return cid

    async def answer(self, call: int, code: int = 200) -> None:
        self.log.append(f"answer {call} {code}")
        if code == 200:
            self.emit(CallStateChanged(call, "confirmed", 200, "OK"))
            self.emit(MediaChanged(call, "active", "G722/16000"))

    async def hangup(self, call: int, code: int = 0) -> None:
        self.log.append(f"hangup {call}")
        self._end(call, 200, "Normal call clearing")

    async def hold(self, call: int) -> None:
        self.emit(MediaChanged(call, "local_hold"))

    async def unhold(self, call: int) -> None:
        self.emit(MediaChanged(call, "active", "G722/16000"))

    async def set_mute(self, call: int, muted: bool) -> None:
        self.log.append(f"mute {call} {muted}")

    async def send_dtmf(self, call: int, digits: str) -> None:
        self.sent_dtmf.append(digits)

    async def transfer(self, call: int, target: str) -> None:
        self.transfers.append((call, target))
        self.emit(TransferProgress(call, 200, "OK", True, True))

    async def attended_transfer(self, call: int, to_call: int) -> None:
        self.transfers.append((call, f"call {to_call}"))
        self.emit(TransferProgress(call, 200, "OK", True, True))
        self._end(to_call, 200, "Transferred")

    async def stats(self, call: int) -> StreamSample | None:
        return StreamSample("G722/16000", 500, 2, 0, 3.5, 40.0, 40.0, 500, 1)
