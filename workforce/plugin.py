"""Workforce's part of the service: the ``warmline staffing`` commands."""

from __future__ import annotations

from core.features import Registry
from workforce.cli import staffing_app


def register(registry: Registry) -> None:
    registry.commands("staffing", staffing_app)
