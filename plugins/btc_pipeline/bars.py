"""OHLCV bar arithmetic on pandas frames: pure functions, no I/O.

A frame of candles has the columns ``source, ts, open, high, low, close, volume`` (``ts`` the bar's
open time, tz-aware UTC), one row per (source, ts).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

CONSENSUS = "consensus"
OHLCV = ("open", "high", "low", "close", "volume")


def consensus(candles: pd.DataFrame) -> pd.DataFrame:
    """The cross-exchange consensus candle of every minute: the median of the exchanges' candles.

    Open, high, low and close are each the median over the exchanges that have a candle in that
    minute (a median of values that each satisfy low <= open, close <= high satisfies it too);
    volume is their sum. A minute one exchange served (failover) is that exchange's candle.

    Args:
        candles: Candles of one or more sources.

    Returns:
        One row per minute with ``source`` = :data:`CONSENSUS` and ``sources`` = how many exchanges
        it is the median of, oldest first.
    """
    columns = ["source", "ts", *OHLCV, "sources"]
    if candles.empty:
        return pd.DataFrame(columns=columns)
    grouped = candles.groupby("ts", sort=True)
    out = grouped[["open", "high", "low", "close"]].median()
    out["volume"] = grouped["volume"].sum(min_count=1)
    out["sources"] = grouped["source"].nunique()
    out = out.reset_index()
    out.insert(0, "source", CONSENSUS)
    return out[columns]


def resample_candles(candles: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Aggregate 1-minute candles of one source into coarser candles (e.g. ``"5min"``)."""
    if candles.empty or rule in ("1min", "1T"):
        return candles
    indexed = candles.set_index("ts")
    out = indexed.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return out.dropna(subset=["close"]).reset_index()


def pick_resample_rule(span: timedelta) -> str:
    """A bar size that keeps a chart of ``span`` around a few hundred candles."""
    if span <= timedelta(hours=6):
        return "1min"
    if span <= timedelta(hours=24):
        return "5min"
    return "1h"
