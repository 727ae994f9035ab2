"""The calls an agent places from the phone: the next contact to preview, their callbacks, the call.

The server reserves a contact to the agent and never sends its number: the phone shows and says
the masked number (read digit by digit, the hidden part said as such), the name, the campaign, the
list's fields and, for a callback, when it is due. Calling asks the server to place the call
(``POST /api/agents/me/dial``); the server rings the agent's own phone first, with the call's
attempt in ``X-Warmline-Attempt`` and ``X-Warmline-Placed``, and the phone answers that call by
itself: the far end is dialled once it has. Skipping sends one of the server's reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from core.i18n import N_, _
from softphone.errors import ActionError
from softphone.privacy import decode_header
from softphone.provisioning import ProvisioningError, ServerClient

log = logging.getLogger(__name__)

# The server's skip reasons, key 1 first (dialer.agent_dial.service.SKIP_REASONS; a test keeps
# the two aligned): code → what the agent reads and hears.
SKIP_REASONS: dict[str, str] = {
    "not_now": N_("Not a good moment to call this person"),
    "language": N_("Needs an agent who speaks their language"),
    "known": N_("I know this person"),
    "other": N_("Other"),
}
PLACING_WAIT = 45.0  # seconds for the server to ring the agent's phone before we say it did not
# The dialer takes a request the moment it is stored, so the agent's leg can ring before the server's
# answer (the call's reference) reaches the phone: a ring marked "placed" waits this long for it.
ANSWER_WAIT = 5.0

Announce = Callable[[str, Literal["polite", "assertive"], str], object]


def spoken_number(masked: str) -> str:
    """``138****0001`` as a screen reader should say it: each digit, and the hidden part named."""
    parts = []
    for run in re.findall(r"\d+|\*+|\+", masked):
        if run.startswith("*"):
            parts.append(_("{n} hidden digits", n=len(run)))
        elif run == "+":
            parts.append(_("plus"))
        else:
            parts.append(" ".join(run))
    return ", ".join(parts)


def local_time(iso: str | None, zone: str | None) -> str:
    """An ISO time from the server, in the callee's zone, as people say it (24-hour clock)."""
    if not iso:
        return ""
    at = datetime.fromisoformat(iso)
    with contextlib.suppress(Exception):
        at = at.astimezone(ZoneInfo(zone or "Asia/Shanghai"))
    return at.strftime("%Y-%m-%d %H:%M")


@dataclass
class Placing:
    """A call the agent asked for that has not rung their phone yet (or is under way)."""

    call_ref: str
    who: str
    contact_id: int
    asked_at: float
    rang: bool = False


class PlacedCalls:
    """The agent's preview, callbacks and the call being placed; the phone owns one."""

    def __init__(self, announce: Announce, changed: Callable[[], None]) -> None:
        self.announce = announce
        self.changed = changed
        self.server: ServerClient | None = None
        self.preview: dict[str, Any] | None = None
        self.callbacks: list[dict[str, Any]] = []
        self.placing: Placing | None = None
        self.listed = 0  # how many times the callbacks were fetched (the page focuses a fresh list)
        self._watch: asyncio.Task[None] | None = None
        self._asking: asyncio.Future[None] | None = None  # a dial request on its way to the server

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    def _server(self) -> ServerClient:
        if self.server is None or not self.server.signed_in:
            raise ActionError(_("Placing calls needs the server; the phone is not signed in to it."))
        return self.server

    async def _ask(self, request: Awaitable[Any]) -> Any:
        """The server's answer, or what it said when it refused (said to the agent as it is)."""
        try:
            return await request
        except ProvisioningError as exc:
            raise ActionError(exc.detail or str(exc)) from exc

    # -- preview -------------------------------------------------------------------------------

    async def next_contact(self) -> None:
        answer = await self._ask(self._server().preview())
        contact = answer.get("contact")
        self.preview = dict(contact) if contact else None
        self.changed()
        if self.preview is None:
            self.announce(
                str(answer.get("message") or _("Nobody is due to be called now.")), "polite", "info"
            )
            return
        self.announce(self.describe(self.preview), "polite", "info")

    def describe(self, contact: dict[str, Any]) -> str:
        name = contact.get("name") or _("no name")
        text = _(
            "Next contact: {name}, campaign {campaign}. Number {number}.",
            name=name,
            campaign=contact.get("campaign", ""),
            number=spoken_number(str(contact.get("phone", ""))),
        )
        fields = "; ".join(f"{k} {v}" for k, v in (contact.get("fields") or {}).items())
        if fields:
            text += " " + _("{fields}.", fields=fields)
        if contact.get("callback_at"):
            due = local_time(contact["callback_at"], contact.get("timezone"))
            text += " " + _("Your callback, due {time}.", time=due)
        return text + " " + _("Press F9 to call, Alt+X to skip.")

    async def skip(self, reason: str, note: str | None = None) -> None:
        if self.preview is None:
            raise ActionError(_("There is no contact to skip; press Alt+N for the next one."))
        codes = list(SKIP_REASONS)
        code = codes[int(reason) - 1] if reason.isdigit() and 0 < int(reason) <= len(codes) else reason
        if code not in SKIP_REASONS:
            raise ActionError(_("Choose a reason with keys 1 to {n}.", n=len(codes)))
        contact_id = int(self.preview["contact_id"])
        await self._ask(self._server().skip_preview(contact_id, code, note))
        self.preview = None
        self.changed()
        self.announce(
            _("Skipped: {reason}. Press Alt+N for the next contact.", reason=_(SKIP_REASONS[code])),
            "polite",
            "info",
        )

    # -- callbacks -----------------------------------------------------------------------------

    async def list_callbacks(self) -> None:
        self.callbacks = list(await self._ask(self._server().callbacks()))
        self.listed += 1
        self.changed()
        if not self.callbacks:
            self.announce(_("No callbacks are kept for you."), "polite", "info")
            return
        due = [c for c in self.callbacks if c.get("due")]
        first = self.callbacks[0]
        text = _("{n} callbacks kept for you, {due} due now.", n=len(self.callbacks), due=len(due))
        text += " " + _(
            "First: {name}, due {time}.",
            name=first.get("name") or spoken_number(str(first.get("phone", ""))),
            time=local_time(first.get("callback_at"), first.get("timezone")),
        )
        self.announce(text + " " + _("Tab to one and press Enter to call it."), "polite", "info")

    # -- the call ------------------------------------------------------------------------------

    async def call(self, contact_id: int | None) -> None:
        """Ask the server to place a call to the previewed contact, or to `contact_id`."""
        if self.placing is not None:
            raise ActionError(_("A call is already being placed; wait for your phone to ring."))
        if contact_id is None:
            if self.preview is None:
                raise ActionError(_("There is no contact to call; press Alt+N for the next one."))
            contact_id = int(self.preview["contact_id"])
        asking = self._asking = asyncio.get_running_loop().create_future()
        try:
            answer = await self._ask(self._server().dial(contact_id))
            who = str(answer.get("name") or spoken_number(str(answer.get("phone", ""))))
            self.placing = Placing(str(answer["call_ref"]), who, contact_id, time.monotonic())
        finally:
            asking.set_result(None)
            self._asking = None
        self.changed()
        self.announce(
            _("Calling {who}. Your phone rings first and answers by itself.", who=who), "polite", "dialing"
        )
        if self._watch is not None:
            self._watch.cancel()
        self._watch = asyncio.create_task(self._no_ring(self.placing.call_ref), name="placing-watch")

    async def _no_ring(self, call_ref: str) -> None:
        await asyncio.sleep(PLACING_WAIT)
        if self.placing is not None and self.placing.call_ref == call_ref and not self.placing.rang:
            self.placing = None
            self.changed()
            self.announce(_("The call did not come through; try again."), "assertive", "error")

    async def rings_placed(self, headers: dict[str, str]) -> Placing | None:
        """`rings`, once a dial request still on its way has its answer (ANSWER_WAIT at most)."""
        asking = self._asking
        if asking is not None and headers.get("placed"):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asking), ANSWER_WAIT)
        return self.rings(headers)

    def rings(self, headers: dict[str, str]) -> Placing | None:
        """The call the agent placed, when this ringing call is it (then the phone answers it)."""
        attempt = decode_header(headers.get("attempt", ""))
        if self.placing is None or not headers.get("placed") or attempt != self.placing.call_ref:
            return None
        self.placing.rang = True
        return self.placing

    def ended(self, call_ref: str) -> None:
        """A call ended: the one being placed is done, and its contact is no longer the preview."""
        if self.placing is None or self.placing.call_ref != call_ref:
            return
        if self.preview is not None and int(self.preview["contact_id"]) == self.placing.contact_id:
            self.preview = None
        self.callbacks = [c for c in self.callbacks if c.get("contact_id") != self.placing.contact_id]
        self.placing = None
        self.changed()

    def view(self) -> dict[str, Any]:
        preview = None
        if self.preview is not None:
            preview = {
                **self.preview,
                "spoken": self.describe(self.preview),
                "callback_local": local_time(self.preview.get("callback_at"), self.preview.get("timezone")),
            }
        return {
            "preview": preview,
            "callbacks": [
                {**c, "callback_local": local_time(c.get("callback_at"), c.get("timezone"))}
                for c in self.callbacks
            ],
            "placing": self.placing.who if self.placing else None,
            "listed": self.listed,
            "skip_reasons": {
                str(n): [code, _(label)] for n, (code, label) in enumerate(SKIP_REASONS.items(), 1)
            },
        }
