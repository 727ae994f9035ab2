"""The console's Jinja environment: the message catalogue, the house formats, and marks for text
in another language than the page's.

Templates get, beside `_()` / `{% trans %}` and `html_lang()` (core.i18n):

- filters `duration`, `hm` (time of day), `day`, `when` (date and time), `number`: the house
  formats of core.formats, times on the centre's clock (the page context's `tz`);
- `phone(masked)`: the masked number shown as it is, spoken digit by digit;
- `code(text)`: an identifier typed in English (a skill, a reason code) marked `lang="en"` on a page
  in another language, so a screen reader reads it with an English voice rather than spelling it
  out in a Chinese one;
- `say(text)`: a text from a configuration file (a scorecard's) in the reader's language;
- `written(text)`: text people wrote (a label, a name), marked `lang="zh-CN"` when it is Chinese
  inside an English page;
- `js_catalogue()`: the page scripts' strings in the page's language, for `t("…")` (dom.js);
- `csrf_field()`: the hidden input every POST form carries (core.csrf); the scripts send the same
  token as X-CSRF-Token (dom.js reads it from the page).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from core import formats
from core.csrf import CSRF_COOKIE, CSRF_FIELD
from core.i18n import _, current_locale, install_jinja, js_catalogue, localised

TEMPLATES = Path(__file__).parent / "templates"


def phone(masked: str | None) -> Markup:
    """A masked number: seen as written, heard digit by digit (the written form is hidden from
    screen readers, the spoken one from sight)."""
    if not masked:
        return Markup("")
    return Markup(
        '<span class="phone"><span aria-hidden="true">{shown}</span>'
        '<span class="visually-hidden">{said}</span></span>'
    ).format(shown=masked, said=formats.spoken_phone(masked))


def code(text: object) -> Markup:
    """An English identifier inside the page's text."""
    if current_locale() == "en":
        return Markup("<code>{}</code>").format(text)
    return Markup('<code lang="en">{}</code>').format(text)


def english(text: object) -> Markup:
    """English words inside a page in another language (a technical detail nobody translated)."""
    if current_locale() == "en" or not str(text):
        return escape(text)
    return Markup('<span lang="en">{}</span>').format(text)


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def written(text: object) -> Markup:
    """Text people wrote (a label in a campaign's settings, a note): Chinese inside a page in
    another language is marked `lang="zh-CN"`, so a screen reader reads it with a Chinese voice."""
    value = "" if text is None else str(text)
    if current_locale() != "en" or not _CJK.search(value):
        return escape(value)
    return Markup('<span lang="zh-CN">{}</span>').format(value)


def kbd(key: str) -> Markup:
    return Markup("<kbd>{}</kbd>").format(key)


def strong(text: str) -> Markup:
    return Markup("<strong>{}</strong>").format(text)


def answer_text(value: object) -> str:
    """A scorecard answer as a person reads it: 是 / 否 / 不适用, a scale point as its number."""
    names = {"yes": _("Yes"), "no": _("No"), "na": _("Not applicable")}
    return names.get(str(value), str(value))


@pass_context
def csrf_token(ctx: Context) -> str:
    """This browser's session CSRF token (its cookie), or "" before sign-in."""
    request = ctx.get("request")
    return str(request.cookies.get(CSRF_COOKIE, "")) if request is not None else ""


@pass_context
def csrf_field(ctx: Context) -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf_token(ctx))


@pass_context
def _hm(ctx: Context, moment: datetime | str | None, seconds: bool = False) -> str:
    return formats.time_of_day(moment, ctx["tz"], seconds=seconds) if moment else ""


@pass_context
def _day(ctx: Context, value: date | datetime | str | None) -> str:
    return formats.day(value, ctx["tz"]) if value else ""


@pass_context
def _when(ctx: Context, moment: datetime | str | None) -> str:
    return formats.date_time(moment, ctx["tz"]) if moment else ""


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    env = templates.env
    env.policies["ext.i18n.trimmed"] = True
    install_jinja(env)
    env.filters.update(
        duration=formats.duration,
        hm=_hm,
        day=_day,
        when=_when,
        number=formats.number,
        clock=formats.clock,
        code=code,
    )
    env.globals.update(
        phone=phone,
        code=code,
        english=english,
        written=written,
        kbd=kbd,
        strong=strong,
        answer_text=answer_text,
        js_catalogue=_page_catalogue,
        csrf_field=csrf_field,
        csrf_token=csrf_token,
        say=localised,
    )
    return templates


def _page_catalogue() -> dict[str, Any]:
    return js_catalogue(current_locale())
