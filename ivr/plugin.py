"""The IVR's part of the command line (`warmline ivr`); its flows run inside the dialer and the
hotline, which call it."""

from __future__ import annotations

from core.features import Registry
from ivr.cli import ivr_app


def register(registry: Registry) -> None:
    registry.commands("ivr", ivr_app)
