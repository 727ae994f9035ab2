"""Classifying a finished attempt into one outcome from what Asterisk and the IVR said."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.i18n import N_, name_of


class Outcome(enum.StrEnum):
    # Final for the contact unless a retry rule says otherwise.
    confirmed = "confirmed"
    completed = "completed"  # heard the message, no answer required or given
    reschedule = "reschedule"
    opted_out = "opted_out"
    agent = "agent"  # talked to an agent
    help = "help"  # asked for help (welfare)
    callback = "callback"  # asked to be called back
    machine_message_left = "machine_message_left"
    # Retryable by the campaign's rules.
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"  # congestion, unreachable, rejected
    machine = "machine"
    no_input = "no_input"
    abandoned = "abandoned"  # answered, but nobody (agent) took the call
    hangup_early = "hangup_early"  # answered and hung up before the message
    interrupted = "interrupted"  # the dialer or Asterisk restarted mid-call; the call's end is unknown


OUTCOME_NAMES = {
    Outcome.confirmed: N_("confirmed"),
    Outcome.completed: N_("heard the message"),
    Outcome.reschedule: N_("asked for another date"),
    Outcome.opted_out: N_("opted out"),
    Outcome.agent: N_("talked to an agent"),
    Outcome.help: N_("asked for help"),
    Outcome.callback: N_("asked for a callback"),
    Outcome.machine_message_left: N_("message left on a machine"),
    Outcome.no_answer: N_("no answer"),
    Outcome.busy: N_("busy"),
    Outcome.failed: N_("failed (unreachable or rejected)"),
    Outcome.machine: N_("answering machine"),
    Outcome.no_input: N_("answered, pressed no key"),
    Outcome.abandoned: N_("abandoned (no agent free)"),
    Outcome.hangup_early: N_("hung up before the message"),
    Outcome.interrupted: N_("interrupted"),
    # Not a call's outcome but a retry rule's name: an agent's wrap-up asked to try again later.
    "retry_later": N_("to be tried again (agent's wrap-up)"),
}


def outcome_name(code: str) -> str:
    """An outcome as a person reads it; an unknown code as it is."""
    return name_of(OUTCOME_NAMES, code)


# Q.850 cause codes as Asterisk reports them (ChannelDestroyed.cause / hangup cause).
BUSY_CAUSES = frozenset({17})
NO_ANSWER_CAUSES = frozenset({18, 19, 31})  # 31 "normal, unspecified" on an unanswered originate
FAILED_CAUSES = frozenset({1, 3, 21, 22, 27, 28, 34, 38, 41, 42, 44, 47, 58, 88, 102, 111, 127})

# Outcomes whose retry rules are looked up under another name.
RETRY_RULE = {
    Outcome.no_answer: "no_answer",
    Outcome.busy: "busy",
    Outcome.failed: "failed",
    Outcome.machine: "machine",
    Outcome.no_input: "no_input",
    Outcome.abandoned: "abandoned",
    Outcome.hangup_early: "no_input",
    Outcome.interrupted: "failed",
    Outcome.callback: "callback",
}


@dataclass(frozen=True)
class CallFacts:
    answered: bool
    hangup_cause: int | None = None
    amd_status: str | None = None  # HUMAN, MACHINE, NOTSURE, HANGUP
    flow_outcome: str | None = None
    message_left: bool = False


def classify(facts: CallFacts) -> Outcome:
    if not facts.answered:
        cause = facts.hangup_cause
        if cause in BUSY_CAUSES:
            return Outcome.busy
        if cause in FAILED_CAUSES:
            return Outcome.failed
        return Outcome.no_answer
    if facts.amd_status == "MACHINE":
        return Outcome.machine_message_left if facts.message_left else Outcome.machine
    if facts.flow_outcome:
        try:
            return Outcome(facts.flow_outcome)
        except ValueError:
            return Outcome.completed
    return Outcome.hangup_early


def is_final(outcome: Outcome) -> bool:
    """An outcome that ends the contact regardless of attempts left."""
    return outcome not in RETRY_RULE
