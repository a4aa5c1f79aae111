"""OHLCV bar arithmetic: pure functions, no I/O.

The read model (:mod:`btc_pipeline.store.rollups`) keeps every series as bars; these are the rules
that make its maintenance idempotent, whatever order or how many times observations arrive:

- an exchange's 1-minute candle: the latest *fetch* wins (:func:`candle_wins`), as in ``btc.prices``;
- ticker readings: a bar of tick prices, merged by earliest-first / latest-last / max / min
  (:func:`merge_ticks`), so that a reading counted twice changes nothing;
- the consensus minute: the median of the exchanges' candles (:func:`median_bar`);
- a coarser bar: the first open, max high, min low and last close of its finer bars
  (:func:`aggregate`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

#: Bar sizes of the read model and the time each bar spans (see :func:`interval_for` for the chart
#: ranges they keep to a few hundred bars).
BAR_LENGTH: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
#: A bar size, as the read API's ``interval`` parameter takes it.
Interval = Literal["1m", "5m", "1h", "1d"]
#: Exchanges state BTC volumes to the satoshi; sums are rounded there (no ``30.430274569999995``).
VOLUME_DECIMALS = 8


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar.

    Attributes:
        n: What the bar summarises: 1 for a 1-minute bar (an exchange's candle, or its ticker
            readings of that minute), the number of exchanges for a consensus minute, and the
            number of 1-minute bars for a coarser one.
        fetched: An exchange candle's fetch time (epoch ms): the latest fetch wins.
        first, last: A tick bar's first and last reading (epoch ms): they decide its open and close.
    """

    open: float
    high: float
    low: float
    close: float
    volume: float | None = None
    n: int = 1
    fetched: int | None = None
    first: int | None = None
    last: int | None = None

    def same_values(self, other: Bar | None) -> bool:
        """Whether ``other`` has the same prices and volume (provenance aside)."""
        return other is not None and (self.open, self.high, self.low, self.close, self.volume) == (
            other.open,
            other.high,
            other.low,
            other.close,
            other.volume,
        )


def candle_wins(new: Bar, old: Bar | None) -> bool:
    """Whether the candle ``new`` replaces ``old`` for the same exchange and minute.

    The latest fetch wins (a re-run re-reads the exchange's settled candle); an older or equal
    fetch never replaces a stored one, so a re-delivery changes nothing.
    """
    if old is None:
        return True
    return (new.fetched or 0) > (old.fetched or 0) and not new.same_values(old)


def tick_bar(price: float, at_ms: int) -> Bar:
    """The tick bar of one ticker reading (``price`` at ``at_ms``, the exchange's time, epoch ms)."""
    return Bar(price, price, price, price, None, 1, first=at_ms, last=at_ms)


def merge_ticks(old: Bar | None, new: Bar) -> Bar:
    """Two tick bars of one minute as one; merging a reading twice, or in any order, changes nothing.

    Returns:
        Open = the earliest reading's, close = the latest's, high/low = the extremes.
    """
    if old is None:
        return new
    first_old, first_new = old.first or 0, new.first or 0
    last_old, last_new = old.last or 0, new.last or 0
    return Bar(
        open=new.open if first_new < first_old else old.open,
        high=max(old.high, new.high),
        low=min(old.low, new.low),
        close=new.close if last_new > last_old else old.close,
        volume=None,
        n=1,  # a reading counted twice must change nothing, so tick bars do not count readings
        first=min(first_old, first_new),
        last=max(last_old, last_new),
    )


def aggregate(bars: Iterable[Bar | None], *, of_minutes: bool) -> Bar | None:
    """The coarser bar of consecutive finer bars (``None`` slots are skipped).

    Args:
        bars: The finer bars, oldest first.
        of_minutes: They are 1-minute bars: ``n`` counts them (a consensus minute's ``n`` counts
            exchanges); otherwise ``n`` is the sum of theirs (already a count of minutes).

    Returns:
        First open, max high, min low, last close, summed volume (``None`` when no bar has one),
        ``n``; ``None`` when there is no bar at all.
    """
    present = [b for b in bars if b is not None]
    if not present:
        return None
    volumes = [b.volume for b in present if b.volume is not None]
    firsts = [b.first for b in present if b.first is not None]
    lasts = [b.last for b in present if b.last is not None]
    return Bar(
        open=present[0].open,
        high=max(b.high for b in present),
        low=min(b.low for b in present),
        close=present[-1].close,
        volume=total_volume(volumes),
        n=len(present) if of_minutes else sum(b.n for b in present),
        first=min(firsts) if firsts else None,
        last=max(lasts) if lasts else None,
    )


def median_bar(bars: Sequence[Bar]) -> Bar | None:
    """The consensus of several exchanges' candles of one minute.

    Open, high, low and close are each the median over the exchanges (a median of values that each
    satisfy low <= open, close <= high satisfies it too); volume is their sum; ``n`` the number of
    exchanges. With one exchange (failover) it is that exchange's candle.
    """
    if not bars:
        return None
    volumes = [b.volume for b in bars if b.volume is not None]
    return Bar(
        open=statistics.median(b.open for b in bars),
        high=statistics.median(b.high for b in bars),
        low=statistics.median(b.low for b in bars),
        close=statistics.median(b.close for b in bars),
        volume=total_volume(volumes),
        n=len(bars),
    )


def total_volume(volumes: Sequence[float]) -> float | None:
    """The sum of ``volumes`` to the satoshi; ``None`` when there are none."""
    return to_satoshi(math.fsum(volumes)) if volumes else None


def to_satoshi(volume: float) -> float:
    """``volume`` rounded to ``VOLUME_DECIMALS``."""
    return round(volume, VOLUME_DECIMALS)


def as_read(bar: Bar) -> Bar:
    """``bar`` as readers (API, dashboard, alerts) see it: its volume to the satoshi (a coarser bar
    derived before sums were rounded keeps its float noise in the read model until one of its
    minutes changes), without the fetch and tick times (the maintenance's business)."""
    volume = None if bar.volume is None else to_satoshi(bar.volume)
    return replace(bar, volume=volume, fetched=None, first=None, last=None)


def interval_for(span: timedelta) -> str:
    """The read model's bar size that shows ``span`` in at most a few hundred bars.

    1 h and 6 h at 1 minute (60 and 360 bars), a day at 5 minutes (288), a week and a month at
    1 hour (168 and 720), longer at 1 day.
    """
    if span <= timedelta(hours=6):
        return "1m"
    if span <= timedelta(days=1):
        return "5m"
    if span <= timedelta(days=31):
        return "1h"
    return "1d"
