"""Workforce's part of the service: ``warmline staffing``, ``warmline workforce``, ``warmline shifts`` and
``warmline practice``, their API, the Stasis handler that plays a practice call's scenario, and the workers that warn of
overtime and carry callers' compliments to their agents' phones."""

from __future__ import annotations

from core.features import Registry
from workforce.api import agent_router, router
from workforce.cli import staffing_app, workforce_app
from workforce.compliments import serve_compliments
from workforce.practice.api import agent_router as practice_agent_router
from workforce.practice.api import router as practice_router
from workforce.practice.cli import practice_app
from workforce.practice.service import PRACTICE_ARG, practice_handler
from workforce.shifts_cli import shifts_app
from workforce.warnings import serve_warnings


def register(registry: Registry) -> None:
    registry.commands("staffing", staffing_app)
    registry.commands("workforce", workforce_app)
    registry.commands("shifts", shifts_app)
    registry.commands("practice", practice_app)
    registry.router(router, agent_router, practice_router, practice_agent_router)
    registry.stasis_start(PRACTICE_ARG, practice_handler())
    registry.worker("hours-warnings", serve_warnings)
    registry.worker("compliments", serve_compliments)
