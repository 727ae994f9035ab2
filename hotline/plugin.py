"""The hotline's part of the service: it answers inbound calls (Stasis argument ``inbound``)."""

from __future__ import annotations

from core.features import Registry
from hotline.service import INBOUND_ARG, Hotline


def register(registry: Registry) -> None:
    registry.stasis_start(INBOUND_ARG, Hotline().on_stasis_start)
