"""One pjsua2 call and what it reports: state, media, DTMF, transfer progress.

Used on the pjsua2 thread only. The engine keeps a reference to every live `SoftCall` (pjsua2
hangs up a call whose Python object is collected, and ids are reused), connects its audio to
whatever sources and sinks the engine has (sound bridge, player, recorder) and drops it only after
it has been disconnected and the callback has returned.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from softphone.events import (
    CallStateChanged,
    CallStateName,
    DtmfReceived,
    EngineEvent,
    MediaChanged,
    TransferProgress,
)
from softphone.quality import StreamSample, sample_from_stat

HEADER_PREFIX = "x-warmline-"
_HEADER_LINE = re.compile(r"^(X-Warmline-[A-Za-z0-9-]+)\s*:\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)

_STATES: dict[int, CallStateName] = {
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_INCOMING: "incoming",
    pj.PJSIP_INV_STATE_EARLY: "early",
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: "confirmed",
    pj.PJSIP_INV_STATE_DISCONNECTED: "disconnected",
}


def warmline_headers(message: str) -> dict[str, str]:
    """The X-Warmline-* headers of a SIP message, names lower-cased without the prefix."""
    head = message.split("\r\n\r\n", 1)[0]
    return {name.lower().removeprefix(HEADER_PREFIX): value for name, value in _HEADER_LINE.findall(head)}


def display_of(uri: str) -> str:
    """`"Name" <sip:1001@host>` -> `1001`: the user part a person might recognise."""
    m = re.search(r"sips?:([^@;>]+)@", uri)
    return m.group(1) if m else uri.strip('<>" ')


MediaHook = Callable[["SoftCall", Any], None]


class SoftCall(pj.Call):  # type: ignore[misc]
    def __init__(
        self,
        account: Any,
        emit: Callable[[EngineEvent], None],
        on_media: MediaHook,
        call_id: int = pj.PJSUA_INVALID_ID,
    ) -> None:
        super().__init__(account, call_id)
        self._emit = emit
        self._on_media = on_media
        self.remote = ""
        self.ended = False
        self.muted = False
        self.held = False
        self.last_stats: StreamSample | None = None

    @property
    def cid(self) -> int:
        return int(self.getId())

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.remote = display_of(str(info.remoteUri))
        state = _STATES.get(int(info.state))
        if state is None:
            return
        if state == "disconnected":
            self.ended = True
        self._emit(
            CallStateChanged(
                call=int(info.id),
                state=state,
                code=int(info.lastStatusCode),
                reason=str(info.lastReason),
                remote=self.remote,
            )
        )

    def onCallMediaState(self, prm: Any) -> None:
        info = self.getInfo()
        for i, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = int(media.status)
            if status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self._on_media(self, self.getAudioMedia(i))
                self._emit(MediaChanged(call=self.cid, status="active", codec=self._codec()))
            elif status == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD:
                self._emit(MediaChanged(call=self.cid, status="local_hold"))
            elif status == pj.PJSUA_CALL_MEDIA_REMOTE_HOLD:
                self._emit(MediaChanged(call=self.cid, status="remote_hold"))
            elif status == pj.PJSUA_CALL_MEDIA_ERROR:
                self._emit(MediaChanged(call=self.cid, status="error"))
            else:
                self._emit(MediaChanged(call=self.cid, status="none"))
            return

    def _codec(self) -> str:
        try:
            info = self.getStreamInfo(0)
            return f"{info.codecName}/{info.codecClockRate}"
        except pj.Error:
            return ""

    def onStreamDestroyed(self, prm: Any) -> None:
        # The last chance to read the call's figures: after this the stream is gone.
        with contextlib.suppress(pj.Error):
            self.last_stats = sample_from_stat(self.getStreamStat(int(prm.streamIdx)), self._codec())

    def onDtmfDigit(self, prm: Any) -> None:
        self._emit(DtmfReceived(call=self.cid, digit=str(prm.digit)))

    def onCallTransferStatus(self, prm: Any) -> None:
        code = int(prm.statusCode)
        self._emit(
            TransferProgress(
                call=self.cid,
                code=code,
                reason=str(prm.reason),
                final=bool(prm.finalNotify),
                ok=200 <= code < 300,
            )
        )
        # Keep receiving NOTIFYs until the final one; then the transferred call ends itself.
        prm.cont = not prm.finalNotify
