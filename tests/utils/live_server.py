"""The service (`warmline up`: API, console, workers) under uvicorn in a thread, on a free port, as
the browser and lab tests meet it; configured as `warmline up` runs it (warmline.app.server_config)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import uvicorn

from core.db import Database
from core.settings import Settings
from tests.utils.net import free_port
from warmline.app import SHUTDOWN_GRACE_S, create_app, server_config

SERVER_START_S = 60
# A safety net, like until()'s, not a speed check: the stop is proved by what happens (the test's
# database untouched after it), the grace and the workers' own 10 s are far below it.
SERVER_STOP_S = SHUTDOWN_GRACE_S + 120


class LiveServer:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
    ) -> None:
        """`warmline up` in a thread; `overrides` replaces FastAPI dependencies (a test's clock)."""
        self.port = free_port()
        self.app = app = create_app(settings, db)  # a test may read its state (app.state.bus)
        app.dependency_overrides.update(overrides or {})
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        # Stopped for good before the test's database goes: a server left running (a phone's long
        # poll held it 25 s past a 10 s join) went on working on the next test's emptied database.
        self.server.should_exit = True
        self.thread.join(SERVER_STOP_S)
        if self.thread.is_alive():
            raise RuntimeError(f"uvicorn did not stop within {SERVER_STOP_S} s")
