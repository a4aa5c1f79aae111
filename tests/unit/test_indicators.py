"""The chart's moving averages and the exchanges' spread, on the real Bitstamp minute series,
checked against their textbook definitions computed by hand."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest

from btc_pipeline.indicators import ema, sma, spread

MINUTE = timedelta(minutes=1)


def by_hand_sma(closes: list[float], period: int) -> list[float]:
    return [math.nan if i + 1 < period else sum(closes[i + 1 - period : i + 1]) / period for i in range(len(closes))]


def by_hand_ema(closes: list[float], period: int) -> list[float]:
    alpha, out, value = 2 / (period + 1), [], closes[0]
    for i, close in enumerate(closes):
        value = close if i == 0 else alpha * close + (1 - alpha) * value
        out.append(math.nan if i + 1 < period else value)
    return out


def same(series: pd.Series, expected: list[float]) -> bool:
    return len(series) == len(expected) and all(
        (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12)
        for a, b in zip(series.tolist(), expected, strict=True)
    )


@pytest.mark.parametrize("period", [2, 20, 50])
def test_averages_of_contiguous_bars_are_the_textbook_ones(bitstamp_minutes, period):
    closes = bitstamp_minutes["close"].tolist()
    assert same(sma(bitstamp_minutes, period, MINUTE), by_hand_sma(closes, period))
    assert same(ema(bitstamp_minutes, period, MINUTE), by_hand_ema(closes, period))


def test_a_hole_longer_than_the_period_starts_the_averages_over(bitstamp_minutes):
    """Bars a day apart (the real series, its second half moved a day later): the average after the
    hole is that of the later bars alone, not one that mixes in bars a day old."""
    half = len(bitstamp_minutes) // 2
    later = bitstamp_minutes.iloc[half:].assign(ts=bitstamp_minutes["ts"].iloc[half:] + timedelta(days=1))
    holed = pd.concat([bitstamp_minutes.iloc[:half], later], ignore_index=True)
    before, after = holed["close"].iloc[:half].tolist(), holed["close"].iloc[half:].tolist()
    for average, by_hand in ((sma, by_hand_sma), (ema, by_hand_ema)):
        values = average(holed, 20, MINUTE)
        assert same(values, by_hand(before, 20) + by_hand(after, 20))
        assert values.iloc[half : half + 19].isna().all() and values.iloc[half + 19 :].notna().all()


def test_a_hole_within_the_period_does_not(bitstamp_minutes):
    """A few missing minutes (an outage the heal has not filled yet) keep the average going."""
    holed = bitstamp_minutes.drop(index=range(100, 110)).reset_index(drop=True)
    closes = holed["close"].tolist()
    assert same(sma(holed, 20, MINUTE), by_hand_sma(closes, 20))
    assert same(ema(holed, 20, MINUTE), by_hand_ema(closes, 20))


def test_the_spread_is_max_minus_min_over_the_median_of_the_bars_two_exchanges_have(bitstamp_minutes):
    bars = bitstamp_minutes[["ts", "close"]]
    closes = {
        "bitstamp": bars,
        "coinbase": bars.assign(close=bars["close"] * 1.001),
        "kraken": bars.iloc[:10].assign(close=bars["close"].iloc[:10] * 0.998),
        "binance": bars.iloc[:0],
    }
    out = spread(closes)
    assert list(out.columns) == ["ts", "spread_pct", "exchanges"]
    assert out["ts"].tolist() == bars["ts"].tolist()
    first, last = out.iloc[0], out.iloc[-1]
    close = bars["close"].iloc[0]
    assert first["exchanges"] == 3
    assert first["spread_pct"] == pytest.approx((close * 1.001 - close * 0.998) / close * 100)
    assert last["exchanges"] == 2
    close = bars["close"].iloc[-1]
    assert last["spread_pct"] == pytest.approx((close * 1.001 - close) / (close * 1.0005) * 100)


def test_one_exchange_has_no_spread(bitstamp_minutes):
    assert spread({"bitstamp": bitstamp_minutes, "kraken": bitstamp_minutes.iloc[:0]}).empty


@pytest.mark.parametrize(("missing", "starts_over"), [(19, False), (20, True)])
def test_the_boundary_is_a_hole_of_period_bars(bitstamp_minutes, missing, starts_over):
    holed = bitstamp_minutes.drop(index=range(100, 100 + missing)).reset_index(drop=True)
    closes = holed["close"].tolist()
    expected = by_hand_sma(closes[:100], 20) + by_hand_sma(closes[100:], 20) if starts_over else by_hand_sma(closes, 20)
    assert same(sma(holed, 20, MINUTE), expected)
