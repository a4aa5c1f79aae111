"""The Coinbase parsers, fed with the real captured bodies and the real 1-minute series."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.exchanges.base import ExchangeError, TimeRule
from btc_pipeline.exchanges.coinbase import parse_candles, parse_ticker
from btc_pipeline.window import Window

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the parser's clock
RULE = TimeRule(NOW)


def test_real_ticker_capture(realdata):
    tick = parse_ticker(json.loads((realdata / "captures/coinbaseexchange_ticker.json").read_text()), times=RULE)
    assert tick.price == 73367.8
    assert tick.volume == pytest.approx(0.00730812)
    assert tick.ts == datetime(2024, 3, 13, 11, 10, 41, 270099, tzinfo=UTC)


def test_real_candles_capture_column_order(realdata):
    body = json.loads((realdata / "captures/coinbaseexchange_candles.json").read_text())
    start = datetime.fromtimestamp(body[0][0], UTC)
    # the capture is an hourly candle; the parser is granularity-agnostic on the row layout
    candles = parse_candles(body, Window(start, start + timedelta(hours=1)), times=RULE)
    assert len(candles) == 1
    c = candles[0]
    # row = [time, low, high, open, close, volume]
    assert (c.low, c.high, c.open, c.close, c.volume) == (73241.5, 73402.47, 73243.33, 73370.65, 1.56794406)


def test_real_bitstamp_minute_series_through_the_candle_path(realdata):
    """332 real 1-minute BTC/USD candles (59 flat zero-volume minutes) laid out as Coinbase rows."""
    with (realdata / "series/bitstamp_btcusd_1min_2025-01-07_slice.csv").open() as f:
        rows = list(csv.DictReader(f))
    body = [
        [
            int(r["timestamp"]),
            float(r["low"]),
            float(r["high"]),
            float(r["open"]),
            float(r["close"]),
            float(r["volume"]),
        ]
        for r in reversed(rows)
    ]  # Coinbase sends newest first
    start = datetime.fromtimestamp(int(rows[0]["timestamp"]), UTC)
    window = Window(start, start + timedelta(minutes=len(rows)))
    candles = parse_candles(body, window, times=RULE)
    assert len(candles) == len(rows)
    assert [c.ts for c in candles] == sorted(c.ts for c in candles)
    assert candles[0].close == float(rows[0]["close"])
    assert sum(1 for c in candles if c.volume == 0) == 59


def test_rows_outside_the_window_are_dropped_not_failed():
    t = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    rows = [[int((t + timedelta(minutes=m)).timestamp()), 1.0, 3.0, 2.0, 2.5, 0.1] for m in (-1, 0, 1)]
    candles = parse_candles(rows, Window(t, t + timedelta(minutes=1)), times=RULE)
    assert [c.ts for c in candles] == [t]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"message": "NotFound"}, "error body"),
        ({"candles": []}, "expected a JSON array"),
        ([[1767225600, 1.0]], "is not [time, low, high, open, close, volume]"),
        ([[1767225600, "x", 3.0, 2.0, 2.5, 0.1]], "is not a number"),
        ([[1767225600, 3.0, 1.0, 2.0, 2.5, 0.1]], "violates low <= open,close <= high"),
        ([[1767225600, 0.0, 3.0, 2.0, 2.5, 0.1]], "has low=0.0"),
        ([[1767225600, 1.0, 3.0, 2.0, 2.5, -1]], "volume=-1"),
        ([[1767225630, 1.0, 3.0, 2.0, 2.5, 1]], "not on a whole minute"),
    ],
)
def test_bad_candle_bodies_are_exchange_errors(body, problem):
    t = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ExchangeError) as info:
        parse_candles(body, Window(t, t + timedelta(minutes=2)), times=RULE)
    assert problem in str(info.value)
    assert info.value.exchange == "coinbase"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "expected a JSON object"),
        ({"message": "Unauthorized."}, "error body"),
        ({"time": "2024-03-13T11:10:41Z"}, "no 'price'"),
        ({"price": "1", "time": "13/03/2024"}, "not ISO-8601"),
        ({"price": "-5", "time": "2024-03-13T11:10:41Z"}, "not a positive number"),
        ({"price": "nan", "time": "2024-03-13T11:10:41Z"}, "not a finite number"),
    ],
)
def test_bad_ticker_bodies_are_exchange_errors(body, problem):
    with pytest.raises(ExchangeError, match=problem.replace("(", r"\(")):
        parse_ticker(body, times=RULE)
