"""The hand-over of a live call to an agent (queue, ring with a screen pop, bridge, stereo
recording), used by outbound campaigns and the inbound hotline alike."""

from agents.handover.call import (
    AgentTook,
    Announce,
    CallOrigin,
    HandoverRequest,
    HandoverResult,
    QueuePolicy,
)
from agents.handover.queue import SkillQueues
from agents.handover.service import RECORD_CONTEXT, Handover, HandoverDeps

__all__ = [
    "RECORD_CONTEXT",
    "AgentTook",
    "Announce",
    "CallOrigin",
    "Handover",
    "HandoverDeps",
    "HandoverRequest",
    "HandoverResult",
    "QueuePolicy",
    "SkillQueues",
]
