"""Transfers' part of the service: the agents' transfer API and `warmline transfers`. (The live part runs inside every
connected call: agents.transfer.conversation, started by the hand-over and placed calls.)"""

from __future__ import annotations

from agents.transfer.api import router
from agents.transfer.cli import transfers_app
from core.features import Registry


def register(registry: Registry) -> None:
    registry.router(router)
    registry.commands("transfers", transfers_app)
