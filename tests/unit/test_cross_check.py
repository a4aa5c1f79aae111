"""The cross-exchange check: each ticker against the median of the others."""

from __future__ import annotations

import math

import pytest

from btc_pipeline.steps.ticks import cross_check


def test_agreeing_exchanges_flag_nothing():
    check = cross_check({"coinbase": 100_000.0, "kraken": 100_020.0, "binance": 99_940.0, "bitstamp": 100_010.0}, 1.0)
    assert check.flagged == {}
    assert check.spread_pct == pytest.approx((100_020 - 99_940) / 100_005 * 100, abs=1e-4)
    # each against the median of the other three
    assert check.deviations["binance"] == pytest.approx((100_010 - 99_940) / 100_010 * 100, abs=1e-4)
    assert check.deviations["coinbase"] == pytest.approx(10 / 100_010 * 100, abs=1e-4)


def test_one_outlier_is_flagged_and_does_not_drag_the_others():
    check = cross_check({"coinbase": 100_000.0, "kraken": 100_050.0, "binance": 97_000.0, "bitstamp": 99_980.0}, 1.0)
    assert set(check.flagged) == {"binance"}
    assert check.flagged["binance"] == pytest.approx(3_000 / 100_000 * 100, abs=1e-4)
    assert check.deviations["kraken"] < 1.0  # its reference is the median of the other three, not their mean


def test_deviation_just_below_and_above_the_limit():
    below = cross_check({"a": 100.0, "b": 100.0, "c": 100.99}, 1.0)
    above = cross_check({"a": 100.0, "b": 100.0, "c": 101.01}, 1.0)
    assert below.flagged == {}
    assert above.flagged == {"c": pytest.approx(1.01, abs=1e-4)}


def test_two_exchanges_apart_flag_both():
    check = cross_check({"coinbase": 100.0, "kraken": 103.0}, 1.0)
    assert set(check.flagged) == {"coinbase", "kraken"}
    assert check.flagged["kraken"] == pytest.approx(3.0)
    assert check.flagged["coinbase"] == pytest.approx(3 / 103 * 100, abs=1e-4)


@pytest.mark.parametrize("prices", [{}, {"coinbase": 100.0}])
def test_fewer_than_two_prices_have_no_spread(prices):
    check = cross_check(prices, 1.0)
    assert check.spread_pct is None
    assert check.flagged == {} and check.deviations == {}


@pytest.mark.parametrize(
    ("prices", "limit", "problem"),
    [
        ({"a": 100.0, "b": 0.0}, 1.0, "ticker price of b is 0.0"),
        ({"a": 100.0, "b": -5.0}, 1.0, "ticker price of b is -5.0"),
        ({"a": math.nan, "b": 100.0}, 1.0, "ticker price of a is nan"),
        ({"a": 100.0, "b": math.inf}, 1.0, "ticker price of b is inf"),
        ({"a": 100.0, "b": 100.0}, 0.0, "max_deviation_pct=0.0 must be a positive number"),
        ({"a": 100.0, "b": 100.0}, math.nan, "max_deviation_pct=nan"),
    ],
)
def test_bad_input_is_refused_with_a_specific_message(prices, limit, problem):
    with pytest.raises(ValueError, match=problem):
        cross_check(prices, limit)
