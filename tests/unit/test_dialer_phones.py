"""Phone cells to E.164: every way people write numbers, and every way a cell is not a number."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from core.phones import mask, mask_in_text
from dialer.lists import phones
from dialer.lists.phones import normalise

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

CN = frozenset({"CN"})


@pytest.mark.parametrize(
    ("cell", "e164"),
    [
        ("13800138000", "+8613800138000"),
        (" 13800138000 ", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("138.0013.8000", "+8613800138000"),
        ("(138) 0013 8000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),  # full-width digits
        ("＋８６ １３８－００１３－８０００", "+8613800138000"),  # full-width plus and dashes
        ("138\u30000013\u30008000", "+8613800138000"),  # ideographic spaces
        ("+86 138 0013 8000", "+8613800138000"),
        ("+86-13800138000", "+8613800138000"),
        ("0086 13800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("+(86) 138 0013 8000", "+8613800138000"),
        ("013800138000", "+8613800138000"),  # trunk 0 before a mobile
        ("'13800138000", "+8613800138000"),  # typed with an apostrophe to keep Excel off it
        ("13800138000.0", "+8613800138000"),  # a float column exported to CSV
        ("1.3800138000E+10", "+8613800138000"),  # scientific notation with every digit
        ("19912345678", "+8619912345678"),
        ("010-12345678", "+861012345678"),  # Beijing landline
        ("(010) 1234 5678", "+861012345678"),
        ("0755 8888 8888", "+8675588888888"),  # Shenzhen landline
        ("0755-88888888", "+8675588888888"),
        ("+86 (0)10 1234 5678", "+861012345678"),
        ("+86 755 8888 8888", "+8675588888888"),
        ("400-810-8888", "+864008108888"),  # a business number, through phonenumbers
    ],
)
def test_numbers_people_write_are_normalised(cell: str, e164: str) -> None:
    result = normalise(cell)
    assert (result.e164, result.reason) == (e164, None)


@pytest.mark.parametrize(
    ("cell", "reason", "says"),
    [
        ("", "missing", "no number"),
        ("   ", "missing", "no number"),
        ("=A1", "formula", "formula"),
        ('=HYPERLINK("http://x.cn","13800138000")', "formula", "formula"),
        ("@SUM(A1:A2)", "formula", "formula"),
        ("+cmd|' /C calc'!A0", "formula", "formula"),
        ("-2+3+cmd|x", "invalid", ""),
        ("http://example.cn/13800138000", "invalid", "link"),
        ("https://wa.me/8613800138000", "invalid", "link"),
        ("tel:+8613800138000", "invalid", "link"),
        ("www.13800138000.cn", "invalid", "link"),
        ("call 13800138000", "invalid", "never guessed"),
        ("手机13800138000", "invalid", "never guessed"),
        ("13800138000 (home)", "invalid", "never guessed"),
        ("13800138000/13900139000", "invalid", "more than one number"),
        ("13800138000、13900139000", "invalid", "more than one number"),
        ("no phone", "invalid", "not a phone number"),
        ("1234", "invalid", "too short"),
        ("12345678", "invalid", "area code"),  # a landline without its area code
        ("138001380", "invalid", "not a valid CN number"),
        ("16800000000", "invalid", "not a valid CN number"),
        ("138001380001380013800", "invalid", "too long"),
        ("1.38001E+10", "scientific_notation", "lost digits"),  # Excel showed it rounded
        ("1.3800138E+10", "scientific_notation", "lost digits"),
        ("3.5", "invalid", ""),
        ("+1 650 253 0000", "not_allowed_country", "+1 number (US, …)"),
        ("+852 2123 4567", "not_allowed_country", "+852 number (HK)"),
        ("0044 20 7946 0958", "not_allowed_country", "+44 number (GB, …)"),
    ],
)
def test_cells_that_are_not_numbers_are_rejected_with_a_reason(cell: str, reason: str, says: str) -> None:
    result = normalise(cell)
    assert result.e164 is None
    assert result.reason == reason
    assert says in result.detail


def test_foreign_numbers_pass_when_the_campaign_calls_that_country() -> None:
    assert normalise("+1 650 253 0000", allowed=frozenset({"CN", "US"})).e164 == "+16502530000"
    assert normalise("+852 2123 4567", allowed=None).e164 == "+85221234567"
    # A plain Chinese mobile is not allowed in a campaign that calls only Hong Kong.
    assert normalise("13800138000", allowed=frozenset({"HK"})).reason == "not_allowed_country"


def test_extension_is_kept_apart() -> None:
    r = normalise("010-12345678转123")
    assert (r.e164, r.extension) == ("+861012345678", "123")
    r = normalise("021 6123 4567 ext 12")
    assert (r.e164, r.extension) == ("+862161234567", "12")


def test_fast_path_agrees_with_phonenumbers() -> None:
    """The regex fast path must accept exactly what phonenumbers calls a valid Chinese number."""
    rng = random.Random(7)
    samples = [f"1{rng.randint(0, 9)}{rng.randint(0, 10**9 - 1):09d}" for _ in range(4000)]
    samples += [
        f"0{rng.choice(['10', '20', '21', '755', '571', '851'])}{rng.randint(0, 10**8 - 1):08d}"
        for _ in range(2000)
    ]
    samples += [f"0{rng.randint(100, 999)}{rng.randint(0, 10**7 - 1):07d}" for _ in range(2000)]
    samples += ["+86" + s[1:] for s in samples[4000:5000]] + ["0086" + s[1:] for s in samples[6000:6500]]
    for s in samples:
        try:
            n = phonenumbers.parse(s, "CN")
        except phonenumbers.NumberParseException:
            assert normalise(s).e164 is None, s
            continue
        expected = (
            phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(n)
            and phonenumbers.number_type(n) != phonenumbers.PhoneNumberType.PREMIUM_RATE
            else None
        )
        assert normalise(s).e164 == expected, s


def test_fast_mobile_helper() -> None:
    assert phones.fast_cn_mobile("13800138000") == "+8613800138000"
    assert phones.fast_cn_mobile("１３８００１３８０００") is None  # the full path handles full-width
    assert phones.fast_cn_mobile("12345678901") is None


def test_masking() -> None:
    assert mask("+8613800138000") == "138****8000"
    assert mask("+861012345678") == "010****5678"
    assert mask("+8675588888888") == "075****8888"
    assert mask("+16502530000") == "+165****0000"
    assert mask(None) == ""
    assert (
        mask_in_text("call 13800138000 or 010-1234 5678 (2 kids)")
        == "call 138****8000 or 010****5678 (2 kids)"
    )


@pytest.mark.parametrize(
    ("written", "masked"),
    [
        ("13800138000", "138****8000"),  # a mobile however it is written
        ("8613800138000", "138****8000"),
        ("0086 138 0013 8000", "138****8000"),
        ("１３８００１３８０００", "138****8000"),
        ("+86 010 6552 1234", "010****1234"),  # a landline in national form, trunk 0 once
        ("+447911123456", "+447****3456"),  # foreign: the + stays, international digits
        ("+4412345", "+44****45"),
        ("65521234", "65****34"),  # a landline without its area code
        ("1001", "**01"),
        ("7", "*"),
        ("anonymous", "anonymous"),
    ],
)
def test_one_house_format(written: str, masked: str) -> None:
    assert mask(written) == masked


def test_numbers_in_text_masked_and_short_runs_left() -> None:
    assert mask_in_text("电话13800138000转123") == "电话138****8000转123"
    assert mask_in_text("(010) 6552 1234, room 12345") == "010****1234, room 12345"
    assert mask_in_text("+1 650 253 0000") == "+165****0000"
    assert mask_in_text("") == ""


def test_a_managers_chinese_reasons() -> None:
    from core.i18n import use_locale

    with use_locale("zh-CN"):
        assert normalise("1.38001E+10").detail.startswith("科学计数法丢失了位数")
        assert normalise("13800138000 / 13900139000").detail == ("一个单元格里有多个号码：请每行只放一个号码")
