"""A bound on request bodies, checked before anything is read into memory or onto disk.

Starlette spools an uploaded file to a temporary file whatever its size, before a route sees it; a
route's own size check then comes after the disk has filled. This ASGI middleware refuses a body
over ``Settings.max_request_mb`` first: from its Content-Length at once, or, for a body sent in
chunks without one, as soon as the bytes received pass the bound. The refusal is the API's error
shape (core.errors), 413 with code ``too_large`` and a message in the requester's language.
"""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.i18n import N_, from_accept_language, translate

MESSAGE = N_("the request is larger than {most} MiB; nothing of it was kept")


class BodyTooLarge(HTTPException):
    """Raised from the body's reader: an HTTPException, so the route's body parsing passes it on
    as it is (FastAPI turns other errors there into a 400)."""

    def __init__(self, detail: dict[str, str]) -> None:
        super().__init__(413, detail)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self._detail(scope))
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, send)

    def _detail(self, scope: Scope) -> dict[str, str]:
        headers = dict(scope.get("headers") or [])
        language = from_accept_language(headers.get(b"accept-language", b"").decode("latin-1"))
        return {"code": "too_large", "message": translate(language, MESSAGE, most=self.max_bytes >> 20)}

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body = json.dumps({"detail": self._detail(scope)}, ensure_ascii=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
