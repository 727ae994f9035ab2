"""How figures read in each language (core.formats, agents.ledger), how the language of a request,
a command line and a configuration text is chosen (core.i18n, core.deps). Pure: no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from agents.ledger import Totals, spoken_summary, state_name
from core import formats
from core.auth.models import Role, User
from core.deps import LANG_COOKIE, request_locale
from core.i18n import cli_locale, js_catalogue, localised, use_locale

SHANGHAI = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("seconds", "zh", "en"),
    [
        (3 * 3600 + 40 * 60, "3小时40分", "3 h 40 min"),
        (4 * 3600, "4小时", "4 h"),
        (20 * 60 + 59, "20分钟", "20 min"),
        (0, "0分钟", "0 min"),
        (42, "42秒", "42 s"),
        (-5, "0分钟", "0 min"),
    ],
)
def test_durations_read_naturally(seconds: int, zh: str, en: str) -> None:
    with use_locale("zh-CN"):
        assert formats.duration(seconds) == zh
    with use_locale("en"):
        assert formats.duration(seconds) == en


def test_the_hours_summary_the_agent_hears() -> None:
    today = Totals(logged_in_s=3 * 3600 + 40 * 60 + 59)
    with use_locale("zh-CN"):
        assert spoken_summary(today, 240) == "今天已工作3小时40分，离每天4小时的目标还差20分钟"
        assert spoken_summary(today, 210) == "今天已工作3小时40分，每天3小时30分钟的目标已完成"
        assert state_name("on_call") == "通话中" and state_name("wrap_up") == "话后处理中"
    with use_locale("en"):
        assert spoken_summary(today, 240) == "today 3 h 40 min; 20 min to your 4-hour day"
        assert spoken_summary(today, 210) == "today 3 h 40 min; your 3-hour 30-minute day is done"
        assert state_name("on_call") == "on call" and state_name("something_new") == "something new"


def test_times_are_on_the_centres_clock_and_24_hour() -> None:
    # 13:05 UTC is 21:05 in Shanghai; 16:30 UTC on the 24th is already the 25th there.
    evening = datetime(2026, 11, 24, 13, 5, tzinfo=UTC)
    after_midnight = datetime(2026, 11, 24, 16, 30, 9, tzinfo=UTC)
    assert formats.time_of_day(evening, SHANGHAI) == "21:05"
    assert formats.time_of_day(after_midnight, SHANGHAI, seconds=True) == "00:30:09"
    assert formats.time_of_day(evening.isoformat(), "Europe/London") == "13:05"
    with use_locale("zh-CN"):
        assert formats.day(after_midnight, SHANGHAI) == "2026年11月25日"
        assert formats.date_time(evening, SHANGHAI) == "2026年11月24日 21:05"
        assert formats.day(date(2026, 1, 5)) == "2026年1月5日"
        assert formats.weekday(0) == "星期一"
    with use_locale("en"):
        assert formats.date_time(after_midnight, SHANGHAI) == "Nov 25, 2026 00:30"
        assert formats.weekday(6) == "Sunday"
    with pytest.raises(ValueError, match="naive"):
        formats.time_of_day(datetime(2026, 11, 24, 13, 5), SHANGHAI)
    with pytest.raises(ValueError, match="zone"):
        formats.day(evening)


def test_numbers_have_the_locales_separators() -> None:
    with use_locale("zh-CN"):
        assert formats.number(12345) == "12,345" and formats.number(3.5) == "3.5"
    with use_locale("en"):
        assert formats.number(1234567) == "1,234,567"


@pytest.mark.parametrize(
    ("masked", "zh", "en"),
    [
        ("138****8000", "1 3 8，隐藏4位，8 0 0 0", "1 3 8, 4 digits hidden, 8 0 0 0"),
        ("010****1234", "0 1 0，隐藏4位，1 2 3 4", "0 1 0, 4 digits hidden, 1 2 3 4"),
        ("+165****0000", "加，1 6 5，隐藏4位，0 0 0 0", "plus, 1 6 5, 4 digits hidden, 0 0 0 0"),
        ("**01", "隐藏2位，0 1", "2 digits hidden, 0 1"),
        ("", "", ""),
    ],
)
def test_a_masked_number_is_spoken_digit_by_digit(masked: str, zh: str, en: str) -> None:
    with use_locale("zh-CN"):
        assert formats.spoken_phone(masked) == zh
    with use_locale("en"):
        assert formats.spoken_phone(masked) == en


def _request(accept: str | None = None, cookie: str | None = None) -> Request:
    headers = []
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{LANG_COOKIE}={cookie}".encode()))
    return Request({"type": "http", "headers": headers, "method": "GET", "path": "/"})


def test_a_request_speaks_the_users_choice_then_the_browsers_then_chinese() -> None:
    chose_english = User(name="mei", role=Role.agent, password_hash="x", language="en")
    no_choice = User(name="lin", role=Role.agent, password_hash="x", language=None)
    assert request_locale(_request("zh-CN,zh;q=0.9"), chose_english) == "en"
    assert request_locale(_request("en-US,en;q=0.9", cookie="zh-CN"), no_choice) == "zh_CN"
    assert request_locale(_request("en-US,en;q=0.9,zh-CN;q=0.8"), no_choice) == "en"
    assert request_locale(_request("fr-FR,fr;q=0.9"), None) == "zh_CN"
    assert request_locale(_request(), None) == "zh_CN"


def test_the_command_lines_language() -> None:
    assert cli_locale({}) == "zh_CN"
    assert cli_locale({"LANG": "C.UTF-8"}) == "zh_CN"
    assert cli_locale({"LANG": "en_US.UTF-8"}) == "en"
    assert cli_locale({"LANG": "en_US.UTF-8", "LC_ALL": "zh_CN.UTF-8"}) == "zh_CN"
    assert cli_locale({"LANG": "zh_CN.UTF-8", "WARMLINE_LANG": "en"}) == "en"


def test_configuration_texts_and_the_page_scripts_catalogue() -> None:
    text = {"zh-CN": "开场", "en": "Opening"}
    with use_locale("en"):
        assert localised(text) == "Opening" and localised("plain") == "plain"
        assert localised({"zh-CN": "只有中文"}) == "只有中文"
    with use_locale("zh-CN"):
        assert localised(text) == "开场"
    scripts = js_catalogue("zh-CN")
    assert scripts["{h} h {m} min"] == "{h}小时{m}分"  # used by a page script and by the server
    assert "Wallboard is live again." in scripts
    assert "wrong user name or password" not in scripts, "only what page scripts use is sent to them"
    assert js_catalogue("en") == {}


def test_a_week_of_hours_is_cut_at_the_centres_midnight() -> None:
    # A state held from 23:30 to 00:30 Shanghai time counts 30 min on each day there.
    from agents.ledger import Transition, day_bounds, totals

    tz = ZoneInfo(SHANGHAI)
    start = datetime(2026, 11, 24, 23, 30, tzinfo=tz)
    changes = [Transition("available", start), Transition("logged_out", start + timedelta(hours=1))]
    first, _end = day_bounds(date(2026, 11, 24), tz)
    second, end = day_bounds(date(2026, 11, 25), tz)
    assert totals(changes, first, second).logged_in_s == 1800
    assert totals(changes, second, end).logged_in_s == 1800
