"""The features warmline is made of, in the order they are mounted, and the Registry they fill.

Each feature's ``plugin.register`` names its routers, command groups, workers and Stasis handlers
(see core.features); the CLI (warmline.cli) and the app factory (warmline.app) mount what
:func:`collect` returns. A new feature is one more line here.
"""

from __future__ import annotations

from typing import Protocol

import agents.help.plugin
import agents.plugin
import agents.transfer.plugin
import dialer.plugin
import hotline.plugin
import ivr.plugin
import recordings.plugin
import softphone.plugin
import workforce.plugin
from core.features import Registry
from warmline.privacy import plugin as privacy_plugin


class Plugin(Protocol):
    def register(self, registry: Registry) -> None: ...


FEATURES: tuple[Plugin, ...] = (
    agents.plugin,
    agents.help.plugin,
    agents.transfer.plugin,
    dialer.plugin,
    hotline.plugin,
    ivr.plugin,
    recordings.plugin,
    softphone.plugin,
    workforce.plugin,
    privacy_plugin,
)


def collect() -> Registry:
    """A fresh Registry filled by every feature, in FEATURES order."""
    registry = Registry()
    for feature in FEATURES:
        feature.register(registry)
    return registry
