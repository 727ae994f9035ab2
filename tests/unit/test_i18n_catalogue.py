"""The catalogue is complete: every marked string has its zh-CN, with the same placeholders."""

from __future__ import annotations

import re

from core.i18n import PACKAGES, _, from_accept_language, normalise, translate, use_locale
from core.i18n_extract import extract, read_catalogue

PLACEHOLDER = re.compile(r"\{[a-z_][a-z0-9_]*\}|%\([a-z_][a-z0-9_]*\)[sd]")


def _ids(message_id: object) -> list[str]:
    return list(message_id) if isinstance(message_id, tuple | list) else [str(message_id)]


def test_every_marked_string_has_a_chinese_translation() -> None:
    missing = []
    for package in PACKAGES:
        zh = read_catalogue(package, "zh_CN")
        for message in extract(package):
            if not message.id:
                continue
            found = zh.get(message.id, context=message.context)
            if found is None or found.fuzzy or not all(_ids(found.string)):
                where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
                missing.append(f"{_ids(message.id)[0]!r} ({where})")
    assert not missing, "no zh-CN translation (run `make i18n`, then translate):\n" + "\n".join(missing)


def test_translations_keep_the_placeholders() -> None:
    wrong = []
    for package in PACKAGES:
        for message in read_catalogue(package, "zh_CN"):
            if not message.id or not message.string:
                continue
            source = set(PLACEHOLDER.findall(" ".join(_ids(message.id))))
            for text in _ids(message.string):
                if set(PLACEHOLDER.findall(text)) != source:
                    wrong.append(f"{_ids(message.id)[0]!r} → {text!r}")
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_locale_choice() -> None:
    assert normalise(None) == "zh_CN"
    assert normalise("zh-CN") == "zh_CN"
    assert normalise("en-GB") == "en"
    assert normalise("fr") == "zh_CN"
    assert from_accept_language("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.5") == "zh_CN"
    assert from_accept_language("") == "zh_CN"


def test_english_is_the_msgid_and_placeholders_are_filled() -> None:
    with use_locale("en"):
        assert _("Logged in as {agent}.", agent="1001") == "Logged in as 1001."
    assert translate("en", "{n} calls", n=3) == "3 calls"
