"""The hotline's part of the service: it answers inbound calls (Stasis argument ``inbound``), checks
at start that someone can take each line's agent calls, and has ``warmline hotline check``; the
agents' desk (a call's script and form) and the case records (``warmline cases``, ``/api/cases``)."""

from __future__ import annotations

from core.features import Registry
from hotline import cases_api, desk_api
from hotline.cases_cli import cases_app
from hotline.service import INBOUND_ARG, Hotline
from hotline.staffing import hotline_app, log_unstaffed


def register(registry: Registry) -> None:
    registry.stasis_start(INBOUND_ARG, Hotline().on_stasis_start)
    registry.commands("hotline", hotline_app)
    registry.commands("cases", cases_app)
    registry.router(desk_api.router, cases_api.router)
    registry.worker("hotline-staffing", log_unstaffed)
