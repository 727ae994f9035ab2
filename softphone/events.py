"""What the engine tells the rest of the softphone: small, immutable, thread-safe event values.

The pjsua2 thread makes these and hands them to asyncio; nothing here holds a pjsua2 object, so an
event can outlive the call it describes and can be shown, logged or sent anywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

CallStateName = Literal["calling", "incoming", "early", "connecting", "confirmed", "disconnected"]


def _now() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class RegistrationChanged:
    """The account's registration changed: `registered` is the truth to show the agent."""

    account: str
    registered: bool
    code: int
    reason: str
    expires: int
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class IncomingCall:
    """A call arrived. `headers` holds the X-Warmline-* SIP headers (names lower-cased)."""

    call: int
    remote: str
    headers: dict[str, str]
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class CallStateChanged:
    call: int
    state: CallStateName
    code: int = 0
    reason: str = ""
    remote: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class MediaChanged:
    """Audio of a call became active, held (by us or the far end), or went away."""

    call: int
    status: Literal["active", "local_hold", "remote_hold", "none", "error"]
    codec: str = ""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class DtmfReceived:
    call: int
    digit: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class TransferProgress:
    """A transfer we started: `final` once the outcome is known; `ok` when the target answered."""

    call: int
    code: int
    reason: str
    final: bool
    ok: bool
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class EngineStopped:
    reason: str
    at: float = field(default_factory=_now)


EngineEvent = (
    RegistrationChanged
    | IncomingCall
    | CallStateChanged
    | MediaChanged
    | DtmfReceived
    | TransferProgress
    | EngineStopped
)
