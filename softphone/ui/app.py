"""The local web UI: one page on 127.0.0.1, driven entirely from the keyboard.

The page gets the phone's view over Server-Sent Events (`/events`) and sends actions with
`POST /api/action`. Only this PC may use it: the server listens on loopback, checks the `Host`
header (no DNS rebinding) and wants the per-start token (given in the URL the softphone prints)
on every request, so a web page elsewhere cannot drive the agent's phone.
"""

from __future__ import annotations

import asyncio
import html
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from core.i18n import HTML_LANG, _, current_locale, install_jinja, js_catalogue
from softphone.desk import PageFocus
from softphone.keymap import BINDINGS, key_table
from softphone.phone import ActionError, Softphone

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class FocusIn(BaseModel):
    focused: bool


class ActionIn(BaseModel):
    action: str = Field(min_length=1, max_length=32)
    # Text arguments, and `answers` (a call form's question key -> answer) for form and wrap-up.
    args: dict[str, str | bool | dict[str, str | int | float | bool | None]] = Field(default_factory=dict)


def _help_rows() -> str:
    rows = []
    for b in BINDINGS:
        keys = _(" or ").join(f"<kbd>{k}</kbd>" for k in b.keys)
        label, when = html.escape(_(b.label)), html.escape(_(b.when))
        rows.append(f"<tr><th scope='row'>{keys}</th><td>{label}</td><td>{when}</td></tr>")
    return "\n".join(rows)


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    install_jinja(env)
    return env


def create_ui(
    phone: Softphone, *, audio: Any = None, token: str | None = None, page_focus: PageFocus | None = None
) -> FastAPI:
    app = FastAPI(title="warmline softphone", docs_url=None, redoc_url=None, openapi_url=None)
    focus = page_focus or PageFocus()
    templates = _templates()
    app.state.page_focus = focus
    app.state.token = token or secrets.token_urlsafe(16)
    app.state.phone = phone
    app.state.audio = audio

    @app.middleware("http")
    async def local_only(request: Request, call_next: Any) -> Any:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        if host not in LOCAL_HOSTS:
            return HTMLResponse(_("only this PC may use the softphone page"), status_code=403)
        return await call_next(request)

    def check(request: Request) -> None:
        given = request.headers.get("x-softphone-token") or request.query_params.get("t") or ""
        if not secrets.compare_digest(given, app.state.token):
            raise HTTPException(403, _("open the address the softphone printed (it carries a token)"))

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request) -> str:
        check(request)
        # The page's own words (`t("…")` in app.js) in the phone's language; `</` cannot end the
        # script element early because JSON escapes it here.
        catalogue = json.dumps(js_catalogue(current_locale()), ensure_ascii=False).replace("</", "<\\/")
        page = templates.get_template("index.html")
        return page.render(token=app.state.token, help_rows=_help_rows(), catalogue=catalogue)

    @app.get("/api/keys")
    def keys(request: Request) -> dict[str, str]:
        check(request)
        return key_table()

    @app.get("/api/i18n")
    def catalogue(request: Request) -> dict[str, Any]:
        """The page's words in the phone's language: ``t("…")`` looks them up here."""
        check(request)
        locale = current_locale()
        return {"lang": HTML_LANG[locale], "messages": js_catalogue(locale)}

    @app.get("/api/view")
    def view(request: Request) -> dict[str, Any]:
        check(request)
        return phone.view()

    @app.post("/api/action")
    async def action(body: ActionIn, request: Request) -> dict[str, Any]:
        check(request)
        try:
            await phone.act(body.action, **body.args)
        except ActionError as exc:
            phone.announce(str(exc), "assertive", cue="error")
            return {"ok": False, "message": str(exc)}
        except TypeError:
            phone.announce("That action needs something more.", "assertive", cue="error")
            return {"ok": False, "message": "bad arguments"}
        except Exception as exc:
            phone.announce(f"That did not work: {exc}", "assertive", cue="error")
            return {"ok": False, "message": str(exc)}
        return {"ok": True}

    @app.post("/api/audio/{what}")
    async def audio_check(what: str, request: Request) -> dict[str, Any]:
        check(request)
        bridge = app.state.audio
        if bridge is None:
            phone.announce("No sound device is connected to the phone.", "assertive", cue="error")
            return {"ok": False}
        if what == "tone":
            await asyncio.to_thread(bridge.test_tone, 1.0)
            phone.announce("Test tone played. Did you hear it?", cue="info")
            return {"ok": True}
        if what == "mic":
            level = await asyncio.to_thread(bridge.mic_check, 2.0)
            verdict = "is working" if level > -50 else "seems silent"
            phone.announce(f"Your microphone {verdict} (level {level:.0f} dB).", cue="info")
            return {"ok": True, "level": level}
        raise HTTPException(404, "unknown audio check")

    @app.post("/api/page-focus")
    def page_focus_changed(body: FocusIn, request: Request) -> dict[str, bool]:
        """The page gained or lost the focus: the desk speaks only while no page has it."""
        check(request)
        focus.focused = body.focused
        return {"focused": focus.focused}

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        check(request)

        async def stream() -> AsyncIterator[str]:
            focus.page_opened()
            try:
                async for _version in phone.changes():
                    if await request.is_disconnected():
                        return
                    yield f"data: {json.dumps(phone.view(), ensure_ascii=False)}\n\n"
            finally:
                focus.page_closed()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
