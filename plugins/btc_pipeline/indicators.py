"""Chart indicators over a frame of bars (``ts, open, high, low, close, volume``): moving averages
and the spread between exchanges. Pure pandas, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pandas as pd


def sma(bars: pd.DataFrame, period: int, bar: timedelta) -> pd.Series:
    """The simple moving average of the close over ``period`` bars (NaN until there are enough).

    When ``period`` bars or more are missing in a row (bars of ``bar`` each), the average starts
    over after the hole: the bars before it are older than the average's window, so they are left out.
    """
    close = bars["close"]
    return close.groupby(_runs(bars, period, bar)).transform(lambda s: s.rolling(period, min_periods=period).mean())


def ema(bars: pd.DataFrame, period: int, bar: timedelta) -> pd.Series:
    """The exponential moving average of the close (span ``period``; NaN until ``period`` bars),
    started over after a hole of ``period`` bars or more, like :func:`sma`."""
    close = bars["close"]
    return close.groupby(_runs(bars, period, bar)).transform(
        lambda s: s.ewm(span=period, adjust=False, min_periods=period).mean()
    )


def _runs(bars: pd.DataFrame, period: int, bar: timedelta) -> pd.Series:
    """A number per bar that changes after every hole of ``period`` bars or more (the starts of two
    neighbouring bars more than ``period`` bars apart)."""
    return (bars["ts"].diff() > period * bar).cumsum()


def spread(closes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The spread between exchanges, bar by bar: ``(max - min) / median`` of their closes, in percent.

    Args:
        closes: Per exchange, its bars (``ts``, ``close``).

    Returns:
        Columns ``ts``, ``spread_pct`` and ``exchanges`` (how many had a bar), for the bars at
        least two exchanges have.
    """
    series = {name: frame.set_index("ts")["close"] for name, frame in closes.items() if not frame.empty}
    if len(series) < 2:
        return pd.DataFrame(columns=["ts", "spread_pct", "exchanges"])
    table = pd.DataFrame(series)
    count = table.notna().sum(axis=1)
    pct = (table.max(axis=1) - table.min(axis=1)) / table.median(axis=1) * 100
    out = pd.DataFrame({"spread_pct": pct, "exchanges": count})[count >= 2]
    return out.reset_index().rename(columns={"index": "ts"})
