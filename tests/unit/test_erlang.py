"""Erlang C against a published worked example, and `warmline staffing erlang`.

The published figures: Mitan Ltd, "The Erlang-C Formula" (the worked example of 360 calls per half
hour, 4-minute calls, 55 agents, a 15-second target): traffic 48 erlangs, occupancy 0.873, the chance
of waiting 0.2387, average speed of answer 0.1364 min (8.2 s), service level 84.6%.
"""

from __future__ import annotations

import json

import pytest

from tests.utils.cli import CliRunner, ok, run
from warmline.cli import app
from workforce.erlang import Demand, by_occupancy, erlang_b, erlang_c, required, staffing_for

MITAN = Demand(calls=360, interval_s=1800, aht_s=240, answer_within_s=15, level=0.8)


def test_the_published_example_to_its_printed_digits() -> None:
    result = staffing_for(55, MITAN)
    assert MITAN.erlangs == 48
    assert round(erlang_c(55, 48), 4) == 0.2387
    assert round(result.occupancy, 3) == 0.873
    assert round(result.asa_s / 60, 4) == 0.1364
    assert round(result.service_level, 3) == 0.846


def test_the_fewest_agents_meet_the_target_and_one_fewer_does_not() -> None:
    needed = required(MITAN)
    assert needed.agents == 55
    assert staffing_for(54, MITAN).service_level < 0.8 <= needed.service_level


def test_erlang_b_stays_finite_for_huge_traffic_where_factorials_overflow() -> None:
    assert 0 < erlang_b(5000, 4900.0) < 1
    big = required(Demand(calls=1_000_000, interval_s=1800, aht_s=180, answer_within_s=20, level=0.8))
    assert 100_000 < big.agents < 100_100


def test_too_few_agents_never_meet_a_level_and_no_calls_need_none() -> None:
    assert staffing_for(10, MITAN).service_level == 0.0
    assert required(Demand(0, 1800, 240, 15, 0.8)).agents == 0
    assert by_occupancy(48.0, 0.85) == 57
    assert by_occupancy(0.0, 0.85) == 0


def test_staffing_erlang_prints_the_contract_keys(cli: CliRunner) -> None:
    out = ok(
        cli,
        "staffing",
        "erlang",
        "--calls",
        "360",
        "--interval-min",
        "30",
        "--aht",
        "240",
        "--answer-within",
        "15",
        "--level",
        "0.8",
        "--json",
    ).stdout
    assert json.loads(out) == {"agents": 55, "service_level": 0.8459, "occupancy": 0.8727, "asa_s": 8.18}


def test_staffing_erlang_takes_a_percentage_and_names_bad_options(cli: CliRunner) -> None:
    out = ok(
        cli,
        "staffing",
        "erlang",
        "--calls",
        "100",
        "--aht",
        "180",
        "--answer-within",
        "20",
        "--level",
        "80",
        "--json",
    ).stdout
    assert json.loads(out)["agents"] == 14
    result = cli.invoke(
        app,
        ["staffing", "erlang", "--calls", "-1", "--aht", "0", "--answer-within", "20", "--level", "150"],
    )
    assert result.exit_code == 2
    for option in ("--calls", "--aht", "--level"):
        assert option in result.output


@pytest.mark.parametrize("level", ["0", "100"])
def test_a_level_of_nothing_or_everything_is_refused(cli: CliRunner, level: str) -> None:
    run(
        cli,
        "staffing",
        "erlang",
        "--calls",
        "10",
        "--aht",
        "60",
        "--answer-within",
        "20",
        "--level",
        level,
        code=2,
    )
