"""Cross-site request forgery: what a request that changes something must show when the browser
sent its credentials by itself (the console's session cookie).

- Origin: a browser names the page a request comes from (`Origin`, else `Referer`); an unsafe
  request (POST, PUT, PATCH, DELETE) from another origin is refused, with or without a session
  (sign-in and sign-out too). A request naming no origin is a program's, not a page's: it passes
  this check and still needs the CSRF token when it rides on a cookie.
- CSRF token: an unsafe request authenticated by the session cookie carries the session's CSRF
  token (core.auth.sessions) in the `X-CSRF-Token` header (the console's scripts) or the form field
  `csrf_token` (the console's forms). A bearer token is never sent by a browser on its own, so
  requests that carry one need neither.

The cookies are SameSite=Strict as well; these checks hold where that does not (an old browser, a
sibling site on the same registrable domain).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request, status

from core.auth.models import ApiToken
from core.auth.sessions import csrf_matches
from core.errors import http_error
from core.i18n import _

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_COOKIE = "warmline_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def own_origin(request: Request) -> str:
    """scheme://host[:port] as the browser sees this service (the scheme a trusted proxy says)."""
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def _claimed_origin(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower()
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return None


def check_same_origin(request: Request) -> None:
    """Refuse an unsafe request a page of another origin sent (`Origin: null` included)."""
    if request.method in SAFE_METHODS:
        return
    claimed = _claimed_origin(request)
    if claimed is not None and claimed != own_origin(request):
        raise http_error(
            status.HTTP_403_FORBIDDEN,
            "cross_origin",
            _("refused: this request comes from another site ({origin})", origin=claimed[:100]),
        )


async def check_cookie_request(request: Request) -> None:
    """For an unsafe request on a console session: the same origin and the session's CSRF token."""
    check_same_origin(request)
    row: ApiToken | None = getattr(request.state, "console_session", None)
    if request.method in SAFE_METHODS or row is None:
        return
    token = request.headers.get(CSRF_HEADER)
    if token is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        value = (await request.form()).get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not csrf_matches(row, token):
        raise http_error(
            status.HTTP_403_FORBIDDEN,
            "csrf_failed",
            _("refused: the page that sent this is out of date or not ours; reload it and try again"),
        )
