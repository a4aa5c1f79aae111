"""Read-side queries of the dashboard, the API, the CLI and the steps, all served by the read model:
what each one reads is a handful of small documents, whatever the length of history.

- bars of a series at a level over a range: the buckets that hold them (:func:`read_bars`);
- which minutes have a candle: the 1-minute buckets of the exchange, or of the consensus for
  "any exchange" (a consensus minute exists exactly when some exchange has a candle);
- when the first candle was stored: the daily, then hourly, then minute buckets of the consensus;
- the newest observation per exchange and kind: :mod:`btc_pipeline.store.latest`.

A long-lived reader (the API) may keep the buckets of past spans in a :class:`BucketCache`: a
bucket whose span ended more than ``settle`` ago is served from memory for up to ``ttl`` after it
was read, so a read of a day of minutes fetches only the current hour's bucket. Changes to those
buckets (a backfill, a correction, the heal) show once their entry expires: the staleness bound is
``ttl``. Buckets still filling are always read from the database.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pymongo.database import Database

from btc_pipeline.bars import Bar
from btc_pipeline.store.buckets import Bucket
from btc_pipeline.store.layout import CONSENSUS, D1, H1, M1, Level
from btc_pipeline.timeutil import EARLIEST, format_ts

BAR_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "n"]
#: How many buckets one collection of a level holds at most (``None``: unbounded, read it whole).
CAPACITY = {"1m": 24, "5m": 31, "1h": 12, "1d": None}
#: Past any stored time (the drain refuses times beyond now + BTC_MAX_CLOCK_SKEW_S).
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


class BucketCache:
    """Buckets of spans that ended a while ago, kept in the reading process for a short time.

    Thread-safe; bounded by the number of bar slots it holds (least recently used first out). An
    absent bucket is remembered as absent for as long as a present one.

    Args:
        ttl_s: How long an entry is served after it was read: the bound on how stale a cached bar
            can be (a backfill or correction of an old bar shows after at most this long).
        settle_s: Only buckets whose span ended at least this long ago are cached: the newest
            bars, which the drain still writes, are always read fresh.
        max_slots: The most bar slots kept (a 1-minute bucket has 60, an hourly one up to 744).
        clock: Monotonic seconds (tests pass their own); ``now``: the wall clock, for "ended".
    """

    def __init__(
        self,
        *,
        ttl_s: float = 30.0,
        settle_s: float = 300.0,
        max_slots: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ttl_s = ttl_s
        self.settle = timedelta(seconds=settle_s)
        self.max_slots = max_slots
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], tuple[float, int, Bucket | None]] = OrderedDict()
        self._slots = 0
        self.hits = 0
        self.misses = 0

    def closed(self, level: Level, bucket_start: datetime) -> bool:
        """Whether the bucket's span ended ``settle`` ago or more (so that it may be cached)."""
        return level.bucket_end(bucket_start) + self.settle <= self._now()

    def get(self, collection: str, bucket_id: str) -> tuple[bool, Bucket | None]:
        """``(True, bucket or None)`` for an entry younger than ``ttl_s``, else ``(False, None)``."""
        key = (collection, bucket_id)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock() - entry[0] > self.ttl_s:
                self.misses += 1
                return False, None
            self._entries.move_to_end(key)
            self.hits += 1
            return True, entry[2]

    def put(self, collection: str, bucket_id: str, bucket: Bucket | None) -> None:
        """Remember ``bucket`` (``None``: there is none) as read now."""
        key = (collection, bucket_id)
        weight = 1 if bucket is None else len(bucket.bars)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._slots -= old[1]
            self._entries[key] = (self._clock(), weight, bucket)
            self._slots += weight
            while self._slots > self.max_slots and self._entries:
                _, (_, dropped, _) = self._entries.popitem(last=False)
                self._slots -= dropped

    def __len__(self) -> int:
        return len(self._entries)


def read_buckets(
    db: Database[Any],
    level: Level,
    series: str,
    start: datetime,
    end: datetime,
    cache: BucketCache | None = None,
) -> list[Bucket]:
    """The stored buckets of ``series`` at ``level`` that hold bars of ``[start, end)``, oldest first.

    A collection is read whole when a third or more of its buckets are wanted (one query), else
    bucket by bucket by ``_id``. With a ``cache``, closed buckets it holds are not read again.
    """
    wanted: dict[str, list[datetime]] = defaultdict(list)
    for bucket_start in level.buckets(start, end):
        wanted[level.collection(series, bucket_start)].append(bucket_start)
    found: list[Bucket] = []
    for name, starts in wanted.items():
        ids: dict[str, datetime] = {}
        for s in starts:
            hit, bucket = cache.get(name, format_ts(s)) if cache is not None else (False, None)
            if not hit:
                ids[format_ts(s)] = s
            elif bucket is not None:
                found.append(bucket)
        if not ids:
            continue
        capacity = CAPACITY[level.name]
        if capacity is None or len(ids) * 3 >= capacity:
            docs = [doc for doc in db[name].find({}) if doc["_id"] in ids]
        else:
            docs = [doc for i in sorted(ids) if (doc := db[name].find_one({"_id": i})) is not None]
        read = {str(doc["_id"]): Bucket.from_doc(doc) for doc in docs}
        found.extend(read.values())
        if cache is not None:
            for bucket_id, bucket_start in ids.items():
                if cache.closed(level, bucket_start):
                    cache.put(name, bucket_id, read.get(bucket_id))
    return sorted(found, key=lambda b: b.start)


def read_bars(
    db: Database[Any],
    level: Level,
    series: str,
    start: datetime,
    end: datetime,
    cache: BucketCache | None = None,
) -> list[tuple[datetime, Bar]]:
    """The bars of ``series`` at ``level`` that start in ``[start, end)``, oldest first."""
    return [
        (ts, bar)
        for bucket in read_buckets(db, level, series, start, end, cache)
        for ts, bar in bucket.items()
        if start <= ts < end
    ]


def bars_frame(bars: list[tuple[datetime, Bar]]) -> pd.DataFrame:
    """Bars as a frame: ``ts`` (tz-aware UTC), ``open, high, low, close, volume, n``."""
    frame = pd.DataFrame([(ts, b.open, b.high, b.low, b.close, b.volume, b.n) for ts, b in bars], columns=BAR_COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


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
