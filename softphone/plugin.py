"""The agent's softphone on the command line (`warmline softphone`). It runs on the agent's PC and
knows the server only through its HTTP API and the bus, so it registers nothing else."""

from __future__ import annotations

from core.features import Registry
from softphone.cli import app


def register(registry: Registry) -> None:
    registry.commands("softphone", app)
