"""Workforce's part of the service: ``warmline staffing``, ``warmline workforce`` and ``warmline shifts``, and their API."""

from __future__ import annotations

from core.features import Registry
from workforce.api import router
from workforce.cli import staffing_app, workforce_app
from workforce.shifts_cli import shifts_app
from workforce.warnings import serve_warnings


def register(registry: Registry) -> None:
    registry.commands("staffing", staffing_app)
    registry.commands("workforce", workforce_app)
    registry.commands("shifts", shifts_app)
    registry.router(router)
    registry.worker("hours-warnings", serve_warnings)
