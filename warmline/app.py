"""The application factory: one FastAPI app mounting every feature's router."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from agents.api import router as agents_router
from agents.events import record_agent_states, record_call_quality
from core.auth.api import router as auth_router
from core.bus import Bus
from core.db import Database
from core.deps import SignInRequired
from core.settings import Settings, get_settings
from dialer.api import router as dialer_router
from dialer.stats_api import router as dialer_stats_router
from dialer.welfare.api import router as welfare_router
from dialer.welfare.events import run_notifier
from recordings.api import router as recordings_router
from recordings.qa.api import router as qa_router
from warmline import __version__
from warmline.api.audit import router as audit_router
from warmline.api.users import router as users_router
from warmline.console.agents import router as agents_console_router
from warmline.console.alerts import router as alerts_console_router
from warmline.console.campaigns import router as campaigns_console_router
from warmline.console.live import router as live_console_router
from warmline.console.pages import router as console_router
from warmline.console.reviews import router as reviews_console_router
from warmline.health import router as health_router

STATIC = Path(__file__).parent / "console" / "static"


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = db or Database(settings.db_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Bus.from_settings(settings, component="api") as bus:
            app.state.bus = bus
            workers = [
                asyncio.create_task(record_agent_states(bus, database), name="agent-states"),
                asyncio.create_task(record_call_quality(bus, database), name="call-quality"),
                asyncio.create_task(run_notifier(settings, database, bus), name="welfare-notifier"),
            ]
            if settings.dialer_enabled:
                from dialer.engine.serve import serve_dialer

                # The welfare notifier above already serves this process.
                dialer = serve_dialer(settings, database, bus, welfare_notifier=False)
                workers.append(asyncio.create_task(dialer, name="dialer"))
            try:
                yield
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    app = FastAPI(
        title="warmline",
        version=__version__,
        description="Home-based contact centre platform",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = database
    for router in (health_router, auth_router, users_router, audit_router, agents_router, console_router):
        app.include_router(router)
    for router in (dialer_router, campaigns_console_router, agents_console_router):
        app.include_router(router)
    for router in (recordings_router, qa_router, reviews_console_router):
        app.include_router(router)
    for router in (dialer_stats_router, live_console_router):
        app.include_router(router)
    for router in (welfare_router, alerts_console_router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(SignInRequired)
    async def to_login(request: Request, _: SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    return app
