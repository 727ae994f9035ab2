"""The message catalogue: every word a person reads or hears, in zh-CN first and English second.

What this module promises:

- Source strings (msgids) are English, as gettext expects; each package keeps the Chinese of its own
  strings in `<package>/locale/zh_CN.po` (one file per feature, so features change apart), and the
  catalogue is all of them together. `zh_CN` is the default locale; `en` shows the msgid.
- `_("Logged in as {agent}.", agent=name)` translates into the *current* locale and then fills named
  placeholders with `str.format`, so a translation may move them ("{agent}，您已登录。").
- The current locale is a context variable: a request, a softphone or a CLI run sets it once with
  `use_locale(...)`; code below never passes a locale around. `translate(locale, msgid)` is for the
  rare place that speaks to someone other than the current user (an alert to supervisors).
- `N_("...")` only marks a module-level constant for extraction; translate it where it is shown,
  with `_(CONSTANT)`.
- `.po` files are read with Babel at first use and cached; there is no compiled `.mo` to forget.
- `make i18n` extracts every marked string (Python, Jinja templates, JavaScript `t("...")`) and
  updates the catalogues; `tests/unit/test_i18n_catalogue.py` fails on any msgid without a zh-CN
  translation, so a missing translation is a red test, not an English sentence in a Chinese UI.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
# Every package with strings for people; each may have `locale/<locale>.po`.
PACKAGES = ("core", "agents", "dialer", "hotline", "ivr", "recordings", "softphone", "warmline", "workforce")
DOMAIN = "warmline"
DEFAULT_LOCALE = "zh_CN"
SUPPORTED_LOCALES = ("zh_CN", "en")
# The BCP 47 tag for HTML `lang` and the Accept-Language header, per locale.
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
# Each language named in itself (a choice of language is read in the language it offers).
LANGUAGE_NAMES = {"zh_CN": "简体中文", "en": "English"}

_current: ContextVar[str] = ContextVar("warmline_locale", default=DEFAULT_LOCALE)


def normalise(locale: str | None) -> str:
    """The supported locale closest to `locale` (`zh-CN`, `zh`, `en-GB`, …); the default if none."""
    if not locale:
        return DEFAULT_LOCALE
    tag = locale.replace("-", "_").strip()
    if tag in SUPPORTED_LOCALES:
        return tag
    lang = tag.split("_")[0].lower()
    if lang == "zh":
        return "zh_CN"
    if lang == "en":
        return "en"
    return DEFAULT_LOCALE


def from_accept_language(header: str | None) -> str:
    """The best supported locale for an HTTP Accept-Language header (quality values respected)."""
    best, best_q = DEFAULT_LOCALE, -1.0
    for part in (header or "").split(","):
        tag, _sep, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        q = 1.0
        if params.strip().startswith("q="):
            with contextlib.suppress(ValueError):
                q = float(params.strip()[2:])
        lang = tag.replace("-", "_").split("_")[0].lower()
        if lang in ("zh", "en") and q > best_q:
            best, best_q = normalise(tag), q
    return best


def tag(locale: str | None) -> str:
    """The BCP 47 tag of the supported locale closest to `locale` ('zh-CN', 'en')."""
    return HTML_LANG[normalise(locale)]


def cli_locale(environ: Mapping[str, str]) -> str:
    """The command line's locale: `WARMLINE_LANG`, else the POSIX variables in their order of
    precedence (`LC_ALL`, `LC_MESSAGES`, `LANG`); 'C'/'POSIX' say nothing; else the default."""
    for name in ("WARMLINE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name, "").split(".")[0].split("@")[0]
        if value and value not in ("C", "POSIX"):
            return normalise(value)
    return DEFAULT_LOCALE


def po_path(package: str, locale: str) -> Path:
    return ROOT / package / "locale" / f"{locale}.po"


@cache
def catalogue(locale: str) -> Catalog:
    """Every package's `.po` for `locale`, read once, as one catalogue."""
    merged = Catalog(locale=locale, domain=DOMAIN, charset="utf-8")
    for package in PACKAGES:
        path = po_path(package, locale)
        if not path.exists():
            continue
        with path.open("rb") as f:
            for message in read_po(f, locale=locale):
                if message.id and message.string and not message.fuzzy:
                    merged[message.id] = message
    return merged


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The catalogue for `locale` as gettext translations; English needs none."""
    if locale == "en":
        return _gettext.NullTranslations()
    catalog = catalogue(locale)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def current_locale() -> str:
    return _current.get()


@contextlib.contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    """Within the block, `_()` speaks `locale` (normalised); the previous locale comes back after."""
    token = _current.set(normalise(locale))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def set_locale(locale: str | None) -> str:
    """Set the locale for the rest of this context (a process's main, a request's task)."""
    _current.set(normalise(locale))
    return _current.get()


def translate(locale: str | None, msgid: str, /, **params: Any) -> str:
    """`msgid` in `locale`, placeholders filled."""
    if not msgid:
        return ""  # gettext("") is the catalogue's header, never a message
    text = translations(normalise(locale)).gettext(msgid)
    return text.format(**params) if params else text


def _(msgid: str, /, **params: Any) -> str:
    """`msgid` in the current locale, placeholders filled."""
    return translate(_current.get(), msgid, **params)


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    text = translations(_current.get()).ngettext(singular, plural, n)
    return text.format(n=n, **params)


def localised(text: str | Mapping[str, str]) -> str:
    """Text from a configuration file in the current locale: a plain string as it is, or a mapping
    of language tags to texts (``{zh-CN: 开场, en: Opening}``), read in the current locale, else
    zh-CN, else its first entry. For what people write in YAML (scorecards), not the catalogue."""
    if isinstance(text, str):
        return text
    by_locale = {normalise(tag): value for tag, value in text.items()}
    for loc in (_current.get(), DEFAULT_LOCALE):
        if by_locale.get(loc):
            return by_locale[loc]
    return next(iter(text.values()), "")


def name_of(names: Mapping[Any, str], code: object) -> str:
    """The name of a code (an enum value, a state) in the current locale, from a table of msgids
    keyed by the codes (enum members or strings); an unknown code as it is, '_' read as spaces."""
    wanted = str(code)
    for key, msgid in names.items():
        if str(key) == wanted:
            return _(msgid)
    return wanted.replace("_", " ")


def N_(msgid: str) -> str:
    """Mark `msgid` for extraction only; translate it where it is shown."""
    return msgid


@cache
def js_catalogue(locale: str | None) -> dict[str, str]:
    """msgid → translation for a browser page's `t("...")`: the strings some page script uses
    (a `.js` location in the catalogue), and only where the translation differs from the msgid."""
    loc = normalise(locale)
    if loc == "en":
        return {}
    return {
        str(m.id): str(m.string)
        for m in catalogue(loc)
        if isinstance(m.id, str)
        and m.string != m.id
        and any(str(path).endswith(".js") for path, _line in m.locations)
    }


def install_jinja(env: Any) -> None:
    """Give a Jinja environment `{% trans %}`, `_()` and `gettext()` in the current locale.

    Jinja fills a template's placeholders itself, `%(name)s` style (`{{ _("%(n)s calls", n=3) }}`,
    or `{% trans n=3 %}{{ n }} calls{% endtrans %}`); Python code uses `{name}`. Templates also get
    `html_lang()`, the BCP 47 tag for `<html lang>`, and `locale()`.
    """
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(
        gettext=lambda s: translations(_current.get()).gettext(s),
        ngettext=lambda s, p, n: translations(_current.get()).ngettext(s, p, n),
        newstyle=True,
    )
    env.globals["html_lang"] = lambda: HTML_LANG[_current.get()]
    env.globals["locale"] = current_locale
