"""Transfers' part of the service: the agents' transfer API. (The live part runs inside every
connected call: agents.transfer.conversation, started by the hand-over and placed calls.)"""

from __future__ import annotations

from agents.transfer.api import router
from core.features import Registry


def register(registry: Registry) -> None:
    registry.router(router)
