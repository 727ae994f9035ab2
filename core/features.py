"""How a feature package plugs into the service and the command line: one ``register()`` each.

Every feature (``agents``, ``dialer``, ``hotline``, ``ivr``, ``recordings``, ``softphone``) has a
``plugin.py`` with ``register(registry: Registry) -> None`` that names its API routers, its CLI
command groups, its background workers and the Stasis arguments it answers -- as wazo-calld's
plugins do. The composition root (``warmline``) builds one Registry, calls every feature's
``register`` in order, then mounts what was collected: routers into the FastAPI app, command
groups into the ``warmline`` CLI, workers into ``warmline up`` (and ``warmline dialer run``),
Stasis handlers into the ARI event router. Nothing registers itself at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from core.ari import AriClient
    from core.ari_events import EventDispatcher
    from core.bus import Bus
    from core.db import Database
    from core.settings import Settings


@dataclass(frozen=True)
class ServiceContext:
    """What a background worker is given: the process's settings, database and bus."""

    settings: Settings
    db: Database
    bus: Bus | None
    stasis: Mapping[str, StasisHandler] = field(default_factory=dict)  # what the ARI router serves


Worker = Callable[[ServiceContext], Coroutine[Any, Any, None]]
"""A long-running task of ``warmline up``; cancelled when the service stops."""


@dataclass(frozen=True)
class StasisContext:
    """What a Stasis handler is given: the Asterisk node the call is on and the process's parts.
    The channel is already subscribed on ``dispatcher`` (nothing of it is missed); the handler
    owns it from there and unsubscribes when done."""

    node: str
    ari: AriClient
    dispatcher: EventDispatcher
    service: ServiceContext


StasisHandler = Callable[[StasisContext, dict[str, Any]], Coroutine[Any, Any, None]]
"""Called with the StasisStart event of a call nobody subscribed to whose first Stasis argument was
registered (an inbound call: ``inbound,<number>``)."""


@dataclass
class Registry:
    """What the features registered, in registration order."""

    routers: list[APIRouter] = field(default_factory=list)
    command_groups: list[tuple[str, typer.Typer]] = field(default_factory=list)
    workers: dict[str, Worker] = field(default_factory=dict)
    stasis: dict[str, StasisHandler] = field(default_factory=dict)

    def router(self, *routers: APIRouter) -> None:
        self.routers.extend(routers)

    def commands(self, name: str, group: typer.Typer) -> None:
        if any(existing == name for existing, _ in self.command_groups):
            raise ValueError(f"CLI group {name!r} registered twice")
        self.command_groups.append((name, group))

    def worker(self, name: str, run: Worker) -> None:
        if name in self.workers:
            raise ValueError(f"worker {name!r} registered twice")
        self.workers[name] = run

    def stasis_start(self, arg: str, handler: StasisHandler) -> None:
        if arg in self.stasis:
            raise ValueError(f"Stasis argument {arg!r} is already handled")
        self.stasis[arg] = handler
