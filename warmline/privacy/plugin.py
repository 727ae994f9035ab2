"""Privacy's part of the command line (`warmline privacy`)."""

from __future__ import annotations

from core.features import Registry
from warmline.privacy.cli import privacy_app


def register(registry: Registry) -> None:
    registry.commands("privacy", privacy_app)
