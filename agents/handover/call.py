"""What a caller of the hand-over says about the call it hands over, and what it gets back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Announce = Callable[[int], Awaitable[None]]
"""Called with the caller's queue position (1 = next), e.g. to say "you are number 2"."""

AgentTook = Callable[[str], Awaitable[None]]
"""Called with the agent's name once their leg has answered: the call is theirs from then on
(again, with the colleague's name, when a transfer hands it on)."""

NumberGate = Callable[[str, str], Awaitable[str]]
"""For transfers to outside numbers: (call_ref, number or directory name) -> the endpoint to dial,
or agents.transfer.service.TransferRefused when the call's campaign does not allow it now."""

Outcome = Literal["connected", "abandoned", "caller_hangup", "error"]


@dataclass(frozen=True)
class CallOrigin:
    """Where the call comes from: shown on the agent's screen pop, written on the recording.
    The phone number is masked before it gets here; nothing here is a full number."""

    campaign: str | None = None
    line: str | None = None  # an inbound call's line (its name): its script and form are the line's
    campaign_id: int | None = None
    elder_welfare: bool = False
    attempt_id: str | None = None
    contact_id: int | None = None
    contact_name: str | None = None
    phone_masked: str | None = None
    script: str | None = None
    fields: Mapping[str, object] = field(default_factory=dict)
    # The agent who promised this callee a callback: offered the call first when available.
    preferred_agent: str | None = None


@dataclass(frozen=True)
class QueuePolicy:
    """How long the caller may wait, how long each agent rings, who goes first."""

    timeout: float = 120.0  # seconds the caller may wait for an agent before ``abandoned``
    ring_timeout: int = 20  # seconds an agent's phone rings before the next agent is tried
    priority: int = 0
    announce_every: float = 30.0
    moh: str | None = "default"  # music-on-hold class while waiting; None: silence
    poll_every: float = 1.0  # how often a waiting call re-checks for a free agent
    # Paced campaigns (the 2-second rule): an agent's phone that has not answered this many seconds
    # after it was rung is given up on at once (None: ``ring_timeout`` and a few seconds' slack).
    answer_within: float | None = None
    # Paced campaigns: ``timeout`` bounds the agent's ring too. An agent still ringing when the
    # caller's time is up is hung up and stays available (not their fault); the caller hears the
    # apology at once instead of after the ring.
    timeout_includes_ring: bool = False
    # Paced outbound calls: an agent an inbound caller waiting in any queue could take is theirs
    # (blended agents serve inbound first).
    inbound_first: bool = False


def queued_by_agent(policy: QueuePolicy) -> QueuePolicy:
    """How a caller an agent handed to a queue waits there: as the queue's own callers do (music,
    the queue's timeout, agents rung as usual) -- not under the 2-second rule of a paced call's
    first hand-over, whose grace (1.2 s, no music) would hang them up as soon as nobody is free.
    The priority is kept, and so is ``inbound_first``: a paced call's caller is still offered to
    agents kept on the line first."""
    return QueuePolicy(priority=policy.priority, inbound_first=policy.inbound_first)


@dataclass(frozen=True)
class HandoverRequest:
    """One live call (in Stasis, answered) to be put through to an agent with ``skill``; an
    inbound call names its ``line`` (the line's name and number: an agent who lists lines takes
    only theirs), and a call may ask for a ``language`` (only agents who speak it take it) and a
    ``min_level`` (a campaign's or line's: no agent below it is ever offered the call)."""

    channel_id: str
    skill: str | None
    line: tuple[str, ...] = ()
    language: str | None = None
    min_level: str | None = None
    origin: CallOrigin = field(default_factory=CallOrigin)
    policy: QueuePolicy = field(default_factory=QueuePolicy)
    announce: Announce | None = None
    on_agent: AgentTook | None = None  # e.g. the dialer noting the agent on the attempt
    number_gate: NumberGate | None = None  # outside numbers the call may be transferred to
    # When the agent hangs up first, leave the caller's channel up (out of the bridge, in Stasis)
    # for what comes after the conversation: the post-call survey (ivr.survey).
    keep_caller: bool = False
    # The agents who handed this caller on (a transfer to a queue): never offered them again.
    passed_on: frozenset[str] = frozenset()


@dataclass
class HandoverResult:
    """How the hand-over ended."""

    outcome: Outcome
    agent: str | None = None
    answered: bool = False
    wait_seconds: float = 0.0
    talk_seconds: float = 0.0
    ended_by: Literal["agent", "customer", "system"] | None = None
    caller_kept: bool = False  # keep_caller: the agent left first, the caller's channel is still up
    customer_cause: int | None = None
    recording_id: str | None = None
    recording_path: Path | None = None  # absolute path of the stored stereo WAV (.wav.enc: encrypted)
    recording_via: str | None = None  # a nailed call's: "mixmonitor" (AMI) or "snoop" (its fallback)
    agents_tried: list[str] = field(default_factory=list)
    error: str | None = None
    nailed: bool = False  # put through an agent kept on the line (agents.handover.nailed): no ring

    def __str__(self) -> str:
        if self.outcome == "connected":
            return f"connected to {self.agent} for {self.talk_seconds:.0f} s, ended by {self.ended_by}"
        return self.outcome
