"""What the server tells the agent about their wellbeing, as the phone says it: a cool-down's start
and end, and callers' compliments.

The notices come with the nailed calls' screen pops (softphone.server_pops: kinds ``cooldown``,
``cooldown_end``, ``compliment``, their ``fields`` the server's detail as text). Each cool-down and
each compliment is said once (two service processes may both publish it). A compliment is said politely and never
over a call: one that comes during a call waits until the phone has no call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.formats import duration
from core.i18n import N_, _

Announce = Callable[..., Any]  # Softphone.announce(text, politeness, cue=...)

REASONS = {
    "abusive": N_("after an abusive call"),
    "escalated": N_("after a call a supervisor helped with"),
    "long_call": N_("after a very long call"),
}
COOLDOWN_STARTED = N_("Rest time {reason}: {left}. No call will be offered to you until {until}.")
COOLDOWN_ENDED = N_("Your rest time is over: calls can be offered to you again.")
COOLDOWN_STATE = N_("Rest time: {left} left, until {until}.")
COMPLIMENT = N_("A caller gave your service {score} out of 5. Thank you!")


def _at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def left_text(seconds: float) -> str:
    """Time left, as said: seconds under a minute, else whole minutes rounded up."""
    seconds = max(0, math.ceil(seconds))
    return duration(seconds if seconds < 60 else math.ceil(seconds / 60) * 60)


def clock_text(moment: datetime) -> str:
    """The wall-clock time on this PC, 24-hour."""
    return moment.astimezone().strftime("%H:%M")


@dataclass
class Rest:
    cooldown_id: str
    reason: str
    until: datetime


class Wellbeing:
    """The phone's cool-down and compliments: told by the server, said to the agent."""

    def __init__(
        self, announce: Announce, busy: Callable[[], bool], now: Callable[[], datetime] | None = None
    ) -> None:
        self.announce = announce
        self.busy = busy
        self.now = now or (lambda: datetime.now(UTC))
        self.rest: Rest | None = None
        self._said: set[tuple[str, str]] = set()  # (kind, cooldown id) already said
        self.held: list[int] = []  # compliments' scores waiting for the end of the call

    def deliver(self, kind: str, fields: dict[str, Any]) -> bool:
        """A notice from the server; False when it is not one of these."""
        if kind == "cooldown":
            self.started(fields)
        elif kind == "cooldown_end":
            self.ended(fields)
        elif kind == "compliment":
            self.compliment(fields)
        else:
            return False
        return True

    def started(self, fields: dict[str, Any]) -> None:
        ident = str(fields.get("cooldown_id") or fields.get("until") or "")
        until = _at(fields.get("until"))
        if until is None or ("cooldown", ident) in self._said:
            return
        self._said.add(("cooldown", ident))
        reason = str(fields.get("reason") or "")
        if self.rest is None or until >= self.rest.until:
            self.rest = Rest(ident, reason, until)
        left = (until - self.now()).total_seconds()
        if left <= 0:
            return
        self.announce(
            _(
                COOLDOWN_STARTED,
                reason=_(REASONS.get(reason, REASONS["abusive"])),
                left=left_text(left),
                until=clock_text(until),
            ),
            "polite",
            cue="break",
        )

    def ended(self, fields: dict[str, Any]) -> None:
        ident = str(fields.get("cooldown_id") or fields.get("until") or "")
        if ("cooldown_end", ident) in self._said:
            return
        self._said.add(("cooldown_end", ident))
        self._said.add(("cooldown", ident))
        if self.rest is not None and self.rest.cooldown_id != ident and self.rest.until > self.now():
            return  # a longer rest still runs: that one's end is the one to say
        self.rest = None
        self.announce(_(COOLDOWN_ENDED), "polite", cue="ready")

    def learn(self, answer: dict[str, Any]) -> None:
        """The server's ``GET /api/agents/me/cooldown``: the truth about the rest running now."""
        until = _at(answer.get("cooldown_until") if isinstance(answer.get("cooldown_until"), str) else None)
        if until is None or int(answer.get("remaining_s") or 0) <= 0:
            self.rest = None
            return
        ident = self.rest.cooldown_id if self.rest is not None else str(answer.get("cooldown_until"))
        self.rest = Rest(ident, str(answer.get("reason") or ""), until)

    def state_text(self) -> str | None:
        """The cool-down for "say my state"; None when none runs."""
        if self.rest is None:
            return None
        left = (self.rest.until - self.now()).total_seconds()
        if left <= 0:
            return None
        return _(COOLDOWN_STATE, left=left_text(left), until=clock_text(self.rest.until))

    def view(self) -> dict[str, Any] | None:
        text = self.state_text()
        if text is None or self.rest is None:
            return None
        return {"until": self.rest.until.isoformat(), "reason": self.rest.reason, "text": text}

    def compliment(self, fields: dict[str, Any]) -> None:
        ident = str(fields.get("survey_id") or fields.get("call_ref") or "")
        if ident and ("compliment", ident) in self._said:
            return  # a second service process published it too
        self._said.add(("compliment", ident))
        try:
            score = int(str(fields.get("score") or "5"))
        except ValueError:
            score = 5
        self.held.append(score)
        self.say_held()

    def say_held(self) -> None:
        """The compliments that waited, once the phone has no call."""
        if self.busy():
            return
        held, self.held = self.held, []
        for score in held:
            self.announce(_(COMPLIMENT, score=score), "polite", cue="info")
