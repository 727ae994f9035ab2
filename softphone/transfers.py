"""Transfers of a call the service put through: the chooser, the consultation, join or go back.

A call the service rang this phone with (``X-Warmline-Attempt``) stays under the service's control,
so its transfers go through the server's API (``/api/agents/me/transfers``), not SIP REFER: the
phone asks, and the service moves the call's legs. The chooser offers a colleague (available ones
first, with their state), a skill queue (with how many of its agents are free) or an outside
number; ``attended`` consults first (the caller hears music on hold, the agent hears the target),
``blind`` hands the caller on at once. The phone then follows the transfer (polling it while it is
under way) and says each step in the agent's language, as the server words it. When the caller
was handed to a colleague, the call's wrap-up is theirs: this phone opens none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from core.i18n import N_, _
from softphone.errors import ActionError
from softphone.provisioning import ProvisioningError, ServerClient

log = logging.getLogger(__name__)

KINDS: dict[str, str] = {
    "agent": N_("Colleague"),
    "queue": N_("Queue"),
    "number": N_("Outside number"),
}
MODES: dict[str, str] = {
    "attended": N_("Consult first"),
    "blind": N_("Hand over at once"),
}
LIVE = ("requested", "ringing", "consulting")
POLL = 0.5  # seconds between looks at a transfer under way

Announce = Callable[[str, Literal["polite", "assertive"], str], object]


@dataclass
class Transfer:
    """One transfer of this phone's call, as the server last told it."""

    id: str
    call_ref: str
    kind: str
    target: str
    mode: str
    state: str
    result: str | None = None
    to_agent: str | None = None
    wrap_up_by: str | None = None
    message: str = ""

    @classmethod
    def of(cls, data: dict[str, Any]) -> Transfer:
        return cls(
            id=str(data["id"]),
            call_ref=str(data["call_ref"]),
            kind=str(data["kind"]),
            target=str(data["target"]),
            mode=str(data["mode"]),
            state=str(data["state"]),
            result=data.get("result"),
            to_agent=data.get("to_agent"),
            wrap_up_by=data.get("wrap_up_by"),
            message=str(data.get("message") or ""),
        )

    @property
    def live(self) -> bool:
        return self.state in LIVE


class Transfers:
    """The chooser and the transfer under way; the phone owns one."""

    def __init__(
        self,
        announce: Announce,
        changed: Callable[[], None],
        me: Callable[[], str],
        server: Callable[[], ServerClient | None],
    ) -> None:
        self.announce = announce
        self.changed = changed
        self.me = me
        self.server_of = server  # the phone's server client, whenever it has one
        self.chooser: dict[str, Any] | None = None  # {"mode", "colleagues", "queues"} while open
        self.current: Transfer | None = None
        self.poll = POLL
        self._watch: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    def _server(self) -> ServerClient:
        server = self.server_of()
        if server is None or not server.signed_in:
            raise ActionError(_("Transfers need the server; the phone is not signed in to it."))
        return server

    async def _ask(self, request: Awaitable[Any]) -> Any:
        try:
            return await request
        except ProvisioningError as exc:
            raise ActionError(exc.detail or str(exc)) from exc

    # -- the chooser ---------------------------------------------------------------------------

    async def open(self, mode: str) -> None:
        """Fetch whom the call may go to and say it: the page shows the chooser."""
        if self.current is not None and self.current.live:
            raise ActionError(_("A transfer is under way: Alt+J joins, Escape goes back to the caller."))
        targets = await self._ask(self._server().transfer_targets())
        self.chooser = {"mode": mode if mode in MODES else "attended", **targets}
        self.changed()
        free = [c["name"] for c in targets.get("colleagues", []) if c.get("available")]
        text = _("Transfer: 1 colleague, 2 queue, 3 outside number; then choose and press Enter.")
        if free:
            text += " " + _("Available now: {names}.", names=", ".join(free))
        else:
            text += " " + _("No colleague is available now.")
        self.announce(text, "polite", "transfer")

    def dismiss(self) -> None:
        if self.chooser is not None:
            self.chooser = None
            self.changed()

    async def start(self, call_ref: str, kind: str, target: str, mode: str) -> None:
        """Ask the server to transfer the call; the phone follows it from here."""
        if kind not in KINDS:
            raise ActionError(_("Choose a colleague, a queue or an outside number (keys 1 to 3)."))
        if not target.strip():
            raise ActionError(_("Choose whom to transfer the call to."))
        answer = await self._ask(self._server().start_transfer(call_ref, kind, target.strip(), mode))
        self.chooser = None
        self.current = Transfer.of(answer)
        self.changed()
        self.announce(self.current.message, "polite", "transfer")
        self._follow()

    async def step(self, step: Literal["complete", "cancel"]) -> None:
        current = self.current
        if current is None or not current.live:
            raise ActionError(_("No transfer is under way."))
        answer = await self._ask(self._server().transfer_step(current.id, step))
        self._update(Transfer.of(answer), quiet=True)
        if step == "complete":
            self.announce(
                _("Handing the caller over to {target}.", target=current.target), "polite", "transfer"
            )
        else:
            self.announce(_("Going back to the caller."), "polite", "transfer")

    # -- following it --------------------------------------------------------------------------

    def _follow(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch = asyncio.create_task(self._watch_it(), name="transfer-watch")

    async def _watch_it(self) -> None:
        while self.current is not None and self.current.live:
            await asyncio.sleep(self.poll)
            current = self.current
            if current is None:
                return
            try:
                answer = await self._server().transfer(current.id)
            except (ProvisioningError, ActionError) as exc:
                log.info("transfer %s: %s", current.id, exc)
                continue
            self._update(Transfer.of(answer))

    def _update(self, fresh: Transfer, *, quiet: bool = False) -> None:
        old = self.current
        self.current = fresh
        self.changed()
        if quiet or (old is not None and (old.state, old.result) == (fresh.state, fresh.result)):
            return
        failed = fresh.state == "failed"
        self.announce(fresh.message, "assertive" if failed else "polite", "error" if failed else "transfer")

    def handed_on(self, call_ref: str) -> bool:
        """Whether this call was handed to someone else to wrap up (then this phone opens none): a
        colleague took the caller, or a blind transfer to a colleague or a queue is still finding
        them one (the caller is no longer this agent's)."""
        current = self.current
        if current is None or current.call_ref != call_ref:
            return False
        if current.live:
            return current.mode == "blind" and current.kind != "number"
        return current.state == "completed" and current.wrap_up_by not in (None, self.me())

    def ended(self, call_ref: str) -> None:
        """The phone's leg of the call ended: a transfer still under way is the server's to finish."""
        if self.current is not None and self.current.call_ref == call_ref and not self.current.live:
            self.current = None
        self.chooser = None
        self.changed()

    async def settle(self, call_ref: str, wait: float = 3.0) -> None:
        """The leg just ended mid-transfer (the server hung it up as it joined the caller to the
        target): learn how the transfer ended before deciding on the wrap-up."""
        current = self.current
        server = self.server_of()
        if current is None or current.call_ref != call_ref or not current.live or server is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while current.live and loop.time() < deadline:
            with contextlib.suppress(ProvisioningError):
                self._update(Transfer.of(await server.transfer(current.id)))
            current = self.current
            if current is None or not current.live:
                return
            await asyncio.sleep(self.poll)

    def view(self) -> dict[str, Any]:
        return {
            "chooser": self.chooser,
            "current": asdict(self.current) if self.current else None,
            "kinds": {str(n): [code, _(label)] for n, (code, label) in enumerate(KINDS.items(), 1)},
            "modes": {code: _(label) for code, label in MODES.items()},
        }
