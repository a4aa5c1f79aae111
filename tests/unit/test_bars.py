"""Bar arithmetic of the read model: coarser bars from the real Bitstamp minute series, and the merge
rules that make maintenance idempotent (checked as properties with hypothesis)."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_pipeline.bars import (
    BAR_LENGTH,
    Bar,
    aggregate,
    as_read,
    candle_wins,
    interval_for,
    median_bar,
    merge_ticks,
    tick_bar,
)


@pytest.fixture(scope="module")
def bitstamp(bitstamp_minutes) -> pd.DataFrame:
    return bitstamp_minutes.set_index("ts")


def test_coarser_bars_of_the_real_series_match_pandas_resampling(bitstamp):
    expected = bitstamp.resample("5min", label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    for start, row in expected.iterrows():
        minutes = bitstamp[(bitstamp.index >= start) & (bitstamp.index < start + timedelta(minutes=5))]
        bars = [Bar(r.open, r.high, r.low, r.close, r.volume) for r in minutes.itertuples()]
        got = aggregate(bars, of_minutes=True)
        assert got is not None
        assert (got.open, got.high, got.low, got.close) == (row.open, row.high, row.low, row.close)
        assert got.volume == pytest.approx(row.volume) and got.n == len(bars)


def test_summed_volumes_are_exact_to_the_satoshi(bitstamp):
    """An hour of real minute volumes (8 decimals each) sums to their decimal sum, not to a float
    with noise in the 15th digit; the consensus of several exchanges' volumes too."""
    minutes = [Bar(r.open, r.high, r.low, r.close, r.volume) for r in bitstamp.iloc[:60].itertuples()]
    exact = float(sum(Decimal(repr(b.volume)) for b in minutes))
    hour = aggregate(minutes, of_minutes=True)
    assert hour is not None and hour.volume == exact
    assert sum(b.volume for b in minutes if b.volume is not None) != exact  # what a plain float sum gives
    consensus = median_bar(minutes[:3])
    assert consensus is not None and consensus.volume == float(sum(Decimal(repr(b.volume)) for b in minutes[:3]))


def test_readers_see_volumes_to_the_satoshi_even_from_a_bar_summed_before_rounding():
    stored = Bar(105_000.0, 105_100.0, 104_900.0, 105_050.0, 30.430274569999995, n=60, fetched=1, first=2, last=3)
    shown = as_read(stored)
    assert shown.volume == 30.43027457 and (shown.fetched, shown.first, shown.last) == (None, None, None)
    assert (shown.open, shown.high, shown.low, shown.close, shown.n) == (105_000.0, 105_100.0, 104_900.0, 105_050.0, 60)
    assert as_read(Bar(1.0, 1.0, 1.0, 1.0, None)).volume is None


def test_empty_slots_are_skipped_and_a_coarser_n_sums_the_minutes():
    a, b = Bar(1, 3, 1, 2, 1.0), Bar(2, 4, 0.5, 3, None)
    assert aggregate([None, a, None, b], of_minutes=True) == Bar(1, 4, 0.5, 3, 1.0, n=2)
    hourly = [Bar(1, 2, 1, 2, 1.0, n=60), Bar(2, 3, 2, 3, 2.0, n=45)]
    assert aggregate(hourly, of_minutes=False).n == 105
    assert aggregate([None, None], of_minutes=True) is None


def test_the_latest_fetch_of_a_candle_wins_and_a_redelivery_changes_nothing():
    first = Bar(100, 110, 90, 105, 1.0, fetched=1_000)
    corrected = Bar(100, 112, 90, 106, 1.2, fetched=2_000)
    assert candle_wins(first, None)
    assert candle_wins(corrected, first)
    assert not candle_wins(first, corrected)  # an older fetch never overwrites a newer one
    assert not candle_wins(Bar(100, 110, 90, 105, 1.0, fetched=3_000), first)  # same values: no change
    assert not candle_wins(first, first)


prices = st.floats(min_value=1_000, max_value=200_000, allow_nan=False)
readings = st.lists(st.tuples(prices, st.integers(0, 59_999)), min_size=1, max_size=12, unique_by=lambda p: p[1])


@given(readings, st.randoms())
def test_tick_bars_merge_in_any_order_and_twice_to_the_same_bar(points, rnd: random.Random):
    """A reading delivered twice, or readings merged in another order, give the same bar."""
    bars = [tick_bar(p, t) for p, t in points]
    shuffled = bars * 2
    rnd.shuffle(shuffled)
    one, other = None, None
    for bar in bars:
        one = merge_ticks(one, bar)
    for bar in shuffled:
        other = merge_ticks(other, bar)
    assert one == other
    by_time = sorted(points, key=lambda p: p[1])
    assert one is not None and (one.open, one.close) == (by_time[0][0], by_time[-1][0])
    assert (one.high, one.low) == (max(p for p, _ in points), min(p for p, _ in points))


candles = st.tuples(prices, prices, prices, prices).map(
    lambda v: Bar(open=v[0], close=v[1], high=max(v) * 1.001, low=min(v) * 0.999, volume=1.0)
)


@given(st.lists(candles, min_size=1, max_size=5))
def test_the_consensus_of_valid_candles_is_a_valid_candle(bars):
    c = median_bar(bars)
    assert c is not None
    assert c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
    assert c.n == len(bars) and c.volume == pytest.approx(len(bars))


def test_the_consensus_of_one_exchange_is_its_candle_and_of_three_the_middle_one():
    a = Bar(100, 101, 99, 100.5, 2.0)
    assert median_bar([a]) == Bar(100, 101, 99, 100.5, 2.0, n=1)
    three = [Bar(100, 101, 99, 100), Bar(102, 103, 101, 102), Bar(101, 102, 100, 101)]
    assert median_bar(three) == Bar(101, 102, 100, 101, None, n=3)
    assert median_bar([]) is None


@pytest.mark.parametrize(
    ("span", "interval"),
    [
        (timedelta(hours=1), "1m"),
        (timedelta(hours=6), "1m"),
        (timedelta(hours=24), "5m"),
        (timedelta(days=7), "1h"),
        (timedelta(days=30), "1h"),
        (timedelta(days=365), "1d"),
    ],
)
def test_the_bar_size_keeps_a_chart_to_a_few_hundred_bars(span, interval):
    assert interval_for(span) == interval
    assert span / BAR_LENGTH[interval] <= 720


def test_pairs_of_the_real_series_are_ordered(bitstamp):
    for a, b in itertools.pairwise(bitstamp.index):
        assert b > a
