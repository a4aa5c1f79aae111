"""Read-side queries of the dashboard, the API, the CLI and the steps, all served by the read model:
what each one reads is a handful of small documents, whatever the length of history.

- bars of a series at a level over a range: the buckets that hold them (:func:`read_bars`);
- which minutes have a candle: the 1-minute buckets of the exchange, or of the consensus for
  "any exchange" (a consensus minute exists exactly when some exchange has a candle);
- when the first candle was stored: the daily, then hourly, then minute buckets of the consensus;
- the newest observation per exchange and kind: :mod:`btc_pipeline.store.latest`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pymongo.database import Database

from btc_pipeline.bars import Bar
from btc_pipeline.store.buckets import Bucket
from btc_pipeline.store.layout import CONSENSUS, D1, H1, M1, Level
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window

BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "n"]
#: How many buckets one collection of a level holds at most (``None``: unbounded, read it whole).
CAPACITY = {"1m": 24, "5m": 31, "1h": 12, "1d": None}
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def read_buckets(db: Database[Any], level: Level, series: str, start: datetime, end: datetime) -> list[Bucket]:
    """The stored buckets of ``series`` at ``level`` that hold bars of ``[start, end)``, oldest first.

    A collection is read whole when a third or more of its buckets are wanted (one query), else
    bucket by bucket by ``_id``.
    """
    wanted: dict[str, list[datetime]] = defaultdict(list)
    for bucket_start in level.buckets(start, end):
        wanted[level.collection(series, bucket_start)].append(bucket_start)
    found: list[Bucket] = []
    for name, starts in wanted.items():
        ids = {format_ts(s) for s in starts}
        capacity = CAPACITY[level.name]
        if capacity is None or len(ids) * 3 >= capacity:
            docs = [doc for doc in db[name].find({}) if doc["_id"] in ids]
        else:
            docs = [doc for i in sorted(ids) if (doc := db[name].find_one({"_id": i})) is not None]
        found.extend(Bucket.from_doc(doc) for doc in docs)
    return sorted(found, key=lambda b: b.start)


def read_bars(
    db: Database[Any], level: Level, series: str, start: datetime, end: datetime
) -> list[tuple[datetime, Bar]]:
    """The bars of ``series`` at ``level`` that start in ``[start, end)``, oldest first."""
    return [
        (ts, bar)
        for bucket in read_buckets(db, level, series, start, end)
        for ts, bar in bucket.items()
        if start <= ts < end
    ]


def bars_frame(bars: list[tuple[datetime, Bar]]) -> pd.DataFrame:
    """Bars as a frame: ``ts`` (tz-aware UTC), ``open, high, low, close, volume, n``."""
    frame = pd.DataFrame([(ts, b.open, b.high, b.low, b.close, b.volume, b.n) for ts, b in bars], columns=BAR_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def present_minutes(db: Database[Any], window: Window, source: str | None = None) -> set[datetime]:
    """Minutes of ``window`` with a 1-minute candle of ``source`` (of any exchange when ``None``)."""
    return {ts for ts, _ in read_bars(db, M1, source or CONSENSUS, window.start, window.end)}


def first_candle(db: Database[Any]) -> datetime | None:
    """When the oldest stored candle's minute starts (``None``: no candle at all).

    Three small reads: the consensus' daily buckets (one per year), then the hourly bucket of that
    day's month, then the minute bucket of that hour.
    """
    years = read_buckets(db, D1, CONSENSUS, EARLIEST, FAR_FUTURE)
    day = next((ts for bucket in years for ts, _ in bucket.items()), None)
    if day is None:
        return None
    hour = next((ts for ts, _ in read_bars(db, H1, CONSENSUS, day, day + D1.bar)), day)
    return next((ts for ts, _ in read_bars(db, M1, CONSENSUS, hour, hour + H1.bar)), hour)
