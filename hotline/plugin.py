"""The hotline's part of the service: it answers inbound calls (Stasis argument ``inbound``), checks
at start that someone can take each line's agent calls, and has ``warmline hotline check``."""

from __future__ import annotations

from core.features import Registry
from hotline.service import INBOUND_ARG, Hotline
from hotline.staffing import hotline_app, log_unstaffed


def register(registry: Registry) -> None:
    registry.stasis_start(INBOUND_ARG, Hotline().on_stasis_start)
    registry.commands("hotline", hotline_app)
    registry.worker("hotline-staffing", log_unstaffed)
