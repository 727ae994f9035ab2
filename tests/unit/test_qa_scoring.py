"""Scorecards: weights, not-applicable, auto-fail, answer checks; Cohen's kappa."""

from __future__ import annotations

import pytest

from recordings.qa import scorecards
from recordings.qa.reviews import cohen_kappa
from recordings.qa.scorecards import ScorecardError

# Written against the English messages (zh-CN is the default; see conftest's `english`).
pytestmark = pytest.mark.usefixtures("english")

CARD = scorecards.parse(
    """
name: t
title: Test card
pass_mark: 80
sections:
  - key: a
    title: A
    weight: 1
    items:
      - {key: x, text: X, weight: 1}
      - {key: y, text: Y, weight: 3}
  - key: b
    title: B
    weight: 3
    items:
      - {key: s, text: S, type: scale, max: 4, weight: 1}
      - {key: f, text: F, auto_fail: true, weight: 0}
"""
)


def test_weighted_score() -> None:
    # A: (1*1 + 3*0)/4 = 0.25; B: 3/4 = 0.75 (f has weight 0); overall (1*0.25 + 3*0.75)/4 = 0.625
    s = scorecards.score(CARD, {"x": "yes", "y": "no", "s": 3, "f": "yes"})
    assert (s.score, s.auto_failed, s.sections) == (62.5, False, {"a": 25.0, "b": 75.0})
    assert not s.passed
    full = scorecards.score(CARD, {"x": "yes", "y": "yes", "s": "4", "f": "yes"})
    assert full.score == 100.0 and full.passed


def test_not_applicable_leaves_the_item_out() -> None:
    s = scorecards.score(CARD, {"x": "na", "y": "yes", "s": 2, "f": "na"})
    assert s.sections == {"a": 100.0, "b": 50.0} and s.score == 62.5
    every_na = scorecards.score(CARD, {"x": "na", "y": "na", "s": 4, "f": "yes"})
    assert every_na.sections["a"] is None and every_na.score == 100.0  # section A counts for nothing


def test_auto_fail_makes_the_score_zero() -> None:
    s = scorecards.score(CARD, {"x": "yes", "y": "yes", "s": 4, "f": "no"})
    assert (s.score, s.raw_score, s.auto_failed, s.failed_items, s.passed) == (0.0, 100.0, True, ["f"], False)


def test_answers_are_checked() -> None:
    with pytest.raises(ScorecardError) as exc:
        scorecards.score(CARD, {"x": "maybe", "s": 5, "f": "yes", "zz": "yes"})
    msg = str(exc.value)
    assert "zz: not an item" in msg and "x (X): answer one of yes, no, na" in msg
    assert "y (Y)" in msg and "s (S): answer one of 0, 1, 2, 3, 4, na" in msg


def test_shipped_cards_load() -> None:
    names = scorecards.available()
    assert {"welfare_call", "general_call"} <= set(names)
    card = scorecards.load("welfare_call")
    assert any(i.auto_fail for i in card.items())
    with pytest.raises(ScorecardError, match="unique"):
        scorecards.parse(
            "name: d\ntitle: D\nsections:\n- {key: a, title: A, items: [{key: x, text: X}, {key: x, text: Y}]}"
        )


def test_cohen_kappa() -> None:
    # The textbook example: 50 pairs, 20 yes/yes, 15 no/no, 5 yes/no, 10 no/yes -> kappa 0.4
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    assert cohen_kappa([("yes", "yes"), ("no", "no")]) == pytest.approx(1.0)
    assert cohen_kappa([("yes", "no"), ("no", "yes")]) == pytest.approx(-1.0)
    assert cohen_kappa([("yes", "yes")] * 3) is None  # chance agreement is 1: undefined
    assert cohen_kappa([]) is None
