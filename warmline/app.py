"""The application factory: one FastAPI app mounting every feature's router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError
from uvicorn import Config as ServerConfig
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.auth.api import router as auth_router
from core.auth.service import password_hasher
from core.bus import Bus
from core.db import Database, utcnow
from core.deps import SignInRequired, request_locale
from core.features import ServiceContext
from core.i18n import N_, from_accept_language, translate, use_locale
from core.limits import BodyLimit
from core.settings import Settings, get_settings
from core.validation import localised_errors
from warmline import __version__
from warmline.api.audit import router as audit_router
from warmline.api.users import router as users_router
from warmline.console.agent_profiles import router as agent_profiles_console_router
from warmline.console.agents import router as agents_console_router
from warmline.console.alerts import router as alerts_console_router
from warmline.console.campaigns import router as campaigns_console_router
from warmline.console.cases import router as cases_console_router
from warmline.console.live import router as live_console_router
from warmline.console.pages import router as console_router
from warmline.console.reports import router as reports_console_router
from warmline.console.reviews import router as reviews_console_router
from warmline.console.settings import router as settings_console_router
from warmline.console.shifts import router as shifts_console_router
from warmline.features import collect
from warmline.health import router as health_router
from warmline.security import SecurityHeaders, add_admin_docs

STATIC = Path(__file__).parent / "console" / "static"
OUT_OF_RANGE = N_("a number in the request is out of range")


CONSOLE_ROUTERS = (
    console_router,
    campaigns_console_router,
    agents_console_router,
    agent_profiles_console_router,
    reviews_console_router,
    live_console_router,
    alerts_console_router,
    cases_console_router,
    settings_console_router,
    shifts_console_router,
    reports_console_router,
)


def _speaker(settings: Settings) -> Callable[[str], Awaitable[str]]:
    """Text to a media URI Asterisk plays, by the IVR's text to speech (features that may not
    import the IVR, such as the agents' abusive-call close, are given this)."""
    from ivr.tts import PromptCache, media_uri

    cache = PromptCache.for_settings(settings)

    async def speak(text: str) -> str:
        return media_uri(await cache.speak(text))

    return speak


log = logging.getLogger(__name__)
WORKERS_STOP_S = 10.0
# How long a stopping service lets requests in flight finish before it cancels them. The phones'
# screen-pop long polls last 25 s: without a bound, a stop (or a restart) waited for the slowest
# of them, and a phone that had gone away without closing its poll held the service up to 25 s.
# A cut poll is asked again by the phone within a second (softphone.server_pops).
SHUTDOWN_GRACE_S = 3


def server_config(app: FastAPI, host: str, port: int, **options: object) -> ServerConfig:
    """How the service runs under uvicorn, one way for `warmline up`, the demo and the tests.
    Forwarded headers are the app's business (settings.trusted_proxies), not uvicorn's default of
    believing 127.0.0.1; no Server header naming the software."""
    return ServerConfig(
        app,
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        **options,  # type: ignore[arg-type]
    )


async def stop_workers(workers: list[asyncio.Task[None]]) -> None:
    """Cancel the service's workers and wait for them, but not for ever: a worker that does not
    end (a lost cancellation) is named in the log and left, so the service still stops."""
    for task in workers:
        task.cancel()
    if not workers:
        return
    done, stuck = await asyncio.wait(workers, timeout=WORKERS_STOP_S)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.warning("worker %s ended with %r", task.get_name(), task.exception())
    for task in stuck:
        log.error("worker %s did not stop within %.0f s of being cancelled", task.get_name(), WORKERS_STOP_S)


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The service: every feature's routes, plus the console; its workers run while it lives.
    `clock` is what sign-in throttling and session timeouts read (tests move it on)."""
    settings = settings or get_settings()
    password_hasher()  # a bad WARMLINE_ARGON2_* stops the start, naming it, not a sign-in later
    database = db or Database(settings.db_url)
    registry = collect()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Bus.from_settings(settings, component="api") as bus:
            app.state.bus = bus
            ctx = ServiceContext(settings, database, bus, stasis=registry.stasis)
            workers = [asyncio.create_task(run(ctx), name=name) for name, run in registry.workers.items()]
            try:
                yield
            finally:
                await stop_workers(workers)

    app = FastAPI(
        title="warmline",
        version=__version__,
        description="Home-based contact centre platform",
        lifespan=lifespan,
        docs_url=None,  # admin-only, added below
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.clock = clock
    app.state.speak = _speaker(settings)
    add_admin_docs(app)
    for router in (health_router, auth_router, users_router, audit_router, *registry.routers):
        app.include_router(router)
    for router in CONSOLE_ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_mb << 20)
    app.add_middleware(SecurityHeaders)
    # Outermost: the client's address and scheme from a trusted proxy, before anything reads them.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A number past what the column holds (an id beyond 64 bits, found by the API fuzz): the
        # request is wrong, not the service. The transaction is already rolled back.
        message = translate(from_accept_language(request.headers.get("accept-language")), OUT_OF_RANGE)
        return JSONResponse({"detail": {"code": "out_of_range", "message": message}}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own 422 keeps its shape (detail[i].loc names the field), said in the reader's
        # language with the error's type as a stable code. The body may fail before any route
        # dependency chose the language: then the browser's own choice.
        locale = getattr(request.state, "locale", None) or request_locale(request, None)
        with use_locale(locale):
            detail = localised_errors(exc.errors())
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(SignInRequired)
    async def to_login(request: Request, _: SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    return app
