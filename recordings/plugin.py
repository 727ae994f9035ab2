"""Recordings and QA: their APIs and their command groups (`warmline recordings`, `warmline qa`)."""

from __future__ import annotations

from core.features import Registry
from recordings import api
from recordings.cli import app as recordings_app
from recordings.qa import api as qa_api
from recordings.qa.cli import qa_app


def register(registry: Registry) -> None:
    registry.router(api.router, qa_api.router)
    registry.commands("recordings", recordings_app)
    registry.commands("qa", qa_app)
