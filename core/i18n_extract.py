"""Extract every marked string and keep each package's catalogue in step (`make i18n`, the test).

Marked means: `_("…")`, `N_("…")`, `ngettext("…", "…", n)`, `translate(locale, "…")` in Python;
`{% trans %}`, `_()`, `gettext()` in Jinja templates; `t("…")` in page JavaScript. A string lives in
the catalogue of the package that uses it (`<package>/locale/zh_CN.po`).
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from core.i18n import DOMAIN, PACKAGES, ROOT, SUPPORTED_LOCALES, po_path

KEYWORDS = {
    "_": None,
    "N_": None,
    "ngettext": (1, 2),
    "translate": (2,),
    "gettext": None,
    "t": None,
}
MAPPING = [
    ("**/locale/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2"),
    ("**/static/**.js", "javascript"),
]


def extract(package: str) -> Catalog:
    """Every marked string in one package, with where it is used."""
    catalog = Catalog(domain=DOMAIN, project="warmline", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
        ROOT / package,
        method_map=MAPPING,
        keywords=KEYWORDS,
        comment_tags=("TRANSLATORS:",),
        strip_comment_tags=True,
    ):
        catalog.add(
            message, None, [(f"{package}/{filename}", lineno)], auto_comments=comments, context=context
        )
    return catalog


def translated(message: Message) -> bool:
    """Every form of the message has its translation (a plural has one per form)."""
    forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
    return not message.fuzzy and all(forms)


def read_catalogue(package: str, locale: str) -> Catalog:
    path = po_path(package, locale)
    if not path.exists():
        return Catalog(locale=locale, domain=DOMAIN, project="warmline", charset="utf-8")
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def update() -> dict[str, int]:
    """Merge each package's strings into its catalogues; return the untranslated count per file."""
    untranslated: dict[str, int] = {}
    for package in PACKAGES:
        template = extract(package)
        for locale in SUPPORTED_LOCALES:
            if locale == "en":
                continue
            path = po_path(package, locale)
            if not len(template) and not path.exists():
                continue
            catalog = read_catalogue(package, locale)
            created = catalog.creation_date
            catalog.update(template, no_fuzzy_matching=True)
            if path.exists():
                catalog.creation_date = created  # a date that changes on every run makes merge conflicts
            path.parent.mkdir(parents=True, exist_ok=True)
            # No line numbers and a kept creation date: a catalogue changes only when its strings do,
            # so two branches that each add strings merge without a conflict on every location.
            with path.open("wb") as f:
                write_po(f, catalog, width=100, sort_output=True, ignore_obsolete=True, include_lineno=False)
            untranslated[str(path.relative_to(ROOT))] = sum(1 for m in catalog if m.id and not translated(m))
    return untranslated


def main() -> int:
    counts = update()
    for path, n in counts.items():
        print(f"{path}: {n} untranslated" if n else f"{path}: complete")
    return 1 if any(counts.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
