"""Where the read model keeps its bars: levels, series, buckets and the collections that hold them.

The read model is made of *buckets*: one document holds the bars of one series at one level over
one span of time, as parallel arrays with one slot per bar (``null`` where there is none). A
collection holds the buckets of one series at one level over one period, so that it stays small
whatever the history: on FerretDB every query reads its whole collection (only ``_id`` equality is
filtered inside SQLite, and even that scans), so the size of what a read touches is set here.

====== ============ ======================== ====================== ===================
level  bar          bucket (one document)    collection (period)    documents / coll.
====== ============ ======================== ====================== ===================
1m     1 minute     1 hour, 60 slots         ``bars.1m.<series>.<YYYY-MM-DD>``   24
5m     5 minutes    1 day, 288 slots         ``bars.5m.<series>.<YYYY-MM>``      28..31
1h     1 hour       1 month, 672..744 slots  ``bars.1h.<series>.<YYYY>``        12
1d     1 day        1 year, 365..366 slots   ``bars.1d.<series>``                1 per year
====== ============ ======================== ====================== ===================

A *series* is an exchange's candles (``coinbase``), the cross-exchange ``consensus`` (the median
of the exchanges' candles, minute by minute), or an exchange's ticker readings turned into bars
(``coinbase-ticks``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from btc_pipeline.bars import BAR_LENGTH
from btc_pipeline.schema import SOURCE_PATTERN
from btc_pipeline.timeutil import to_utc

CONSENSUS = "consensus"
TICKS_SUFFIX = "-ticks"
#: What a series name may be: it becomes part of collection names.
SERIES_NAME = re.compile(rf"{SOURCE_PATTERN}(-ticks)?")
PREFIX = "bars"


def tick_series(exchange: str) -> str:
    """The series of ``exchange``'s ticker readings."""
    return exchange + TICKS_SUFFIX


def is_tick_series(series: str) -> bool:
    return series.endswith(TICKS_SUFFIX)


def exchange_of(series: str) -> str:
    """The exchange a candle or tick series belongs to (``consensus`` for the consensus)."""
    return series.removesuffix(TICKS_SUFFIX)


def valid_series(series: str) -> bool:
    """Whether ``series`` can name collections (lower-case letters, digits, ``_``; ``-ticks`` suffix)."""
    return SERIES_NAME.fullmatch(series) is not None


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _day(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _month(ts: datetime) -> datetime:
    return _day(ts).replace(day=1)


def _year(ts: datetime) -> datetime:
    return _month(ts).replace(month=1)


def _next_month(ts: datetime) -> datetime:
    return (ts.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_partition(prefix: str, ts: datetime) -> str:
    """The collection ``<prefix>.<YYYY-MM>`` of ``ts``' month (small records kept per month)."""
    return f"{prefix}.{to_utc(ts):%Y-%m}"


def month_partitions(prefix: str, start: datetime, end: datetime) -> list[str]:
    """The month partitions that hold ``[start, end)``, oldest first."""
    names: list[str] = []
    month = _month(to_utc(start))
    while month < end and start < end:
        names.append(month_partition(prefix, month))
        month = _next_month(month)
    return names


@dataclass(frozen=True)
class Level:
    """One bar size of the read model and how its bars are grouped (see the module's table)."""

    name: str
    bar: timedelta
    bucket_start: Callable[[datetime], datetime]
    bucket_end: Callable[[datetime], datetime]
    period: Callable[[datetime], str | None]

    def bucket_of(self, ts: datetime) -> datetime:
        """The start of the bucket that holds the bar at ``ts``."""
        return self.bucket_start(to_utc(ts))

    def bar_start(self, ts: datetime) -> datetime:
        """The start of the bar ``ts`` falls in."""
        ts = to_utc(ts)
        start = self.bucket_start(ts)
        return start + self.bar * int((ts - start) / self.bar)

    def slots(self, bucket: datetime) -> int:
        """How many bars the bucket starting at ``bucket`` holds."""
        return int((self.bucket_end(bucket) - bucket) / self.bar)

    def slot(self, bucket: datetime, ts: datetime) -> int:
        """The index of the bar at ``ts`` in the bucket starting at ``bucket``."""
        return int((to_utc(ts) - bucket) / self.bar)

    def collection(self, series: str, bucket: datetime) -> str:
        """The collection that holds ``series``' bucket starting at ``bucket``."""
        period = self.period(bucket)
        return f"{PREFIX}.{self.name}.{series}" + (f".{period}" if period else "")

    def buckets(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """The starts of the buckets that hold the bars of ``[start, end)``, oldest first."""
        bucket = self.bucket_of(start)
        while bucket < end:
            yield bucket
            bucket = self.bucket_end(bucket)


M1 = Level("1m", BAR_LENGTH["1m"], _hour, lambda b: b + timedelta(hours=1), lambda b: f"{b:%Y-%m-%d}")
M5 = Level("5m", BAR_LENGTH["5m"], _day, lambda b: b + timedelta(days=1), lambda b: f"{b:%Y-%m}")
H1 = Level("1h", BAR_LENGTH["1h"], _month, _next_month, lambda b: f"{b:%Y}")
D1 = Level(
    "1d",
    BAR_LENGTH["1d"],
    _year,
    lambda b: b.replace(year=b.year + 1),
    lambda b: None,
)
LEVELS: dict[str, Level] = {level.name: level for level in (M1, M5, H1, D1)}


def epoch_ms(ts: datetime) -> int:
    return int(to_utc(ts).timestamp() * 1000)
