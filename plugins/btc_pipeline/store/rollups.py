"""Maintaining the read model: observations in, bars of every level out, idempotently.

The drain (and ``btc-pipeline rollups rebuild``) hands over a batch of observations; this module
merges them into the 1-minute bars of their series, then recomputes what depends on the minutes
that changed: the consensus minute, and the 5-minute, hourly and daily bars of every series that
changed. Every step is a merge (:mod:`btc_pipeline.bars`) or a recomputation from the bars below,
so applying a batch twice, or after a crash half-way, leaves the same bars, and the cost of a batch
follows the buckets it touches, not the length of history.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.database import Database

from btc_pipeline.bars import Bar, aggregate, candle_wins, median_bar, merge_ticks, tick_bar
from btc_pipeline.schema import Observation
from btc_pipeline.store.buckets import BucketConflictError, BucketStore
from btc_pipeline.store.layout import (
    CONSENSUS,
    D1,
    H1,
    LEVELS,
    M1,
    M5,
    epoch_ms,
    is_tick_series,
    tick_series,
    valid_series,
)
from btc_pipeline.store.locks import locked
from btc_pipeline.store.prices import candle_bar
from btc_pipeline.store.series import SeriesRegistry
from btc_pipeline.store.versioned import MAX_ATTEMPTS
from btc_pipeline.window import Window

log = logging.getLogger(__name__)


def minute_bars(observations: Iterable[Observation]) -> dict[str, dict[datetime, Bar]]:
    """Observations as 1-minute bars by series: candles by their exchange, ticker readings merged
    into ``<exchange>-ticks`` bars of the minute they fall in."""
    out: dict[str, dict[datetime, Bar]] = defaultdict(dict)
    for obs in observations:
        if obs.kind == "candle_1m":
            bar = candle_bar(obs)
            if candle_wins(bar, out[obs.source].get(obs.ts)):
                out[obs.source][obs.ts] = bar
        else:
            series, minute = tick_series(obs.source), M1.bar_start(obs.ts)
            out[series][minute] = merge_ticks(out[series].get(minute), tick_bar(obs.price, epoch_ms(obs.ts)))
    return dict(out)


@dataclass
class RollupResult:
    """What one application did: 1-minute bars changed per series, buckets written."""

    changed_minutes: dict[str, int] = field(default_factory=dict)
    buckets_written: int = 0


class Rollups:
    """The read model's writer for one database."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db
        self.buckets = BucketStore(db)
        self.series = SeriesRegistry(db)

    def snapshot(self, minute_bars: Mapping[str, Mapping[datetime, Bar]]) -> dict[tuple[str, datetime], Bar]:
        """The exchanges' 1-minute candles the read model holds now for the minutes of ``minute_bars``
        (read a collection at a time, outside the lock: what a batch's duplicates are compared with)."""
        reader = BucketStore(self.db)
        out: dict[tuple[str, datetime], Bar] = {}
        for series, bars in minute_bars.items():
            if is_tick_series(series) or not valid_series(series) or series == CONSENSUS:
                continue
            hours = {M1.bucket_of(m) for m in bars}
            reader.preload(M1, series, hours)
            for hour in hours:
                out.update(((series, ts), bar) for ts, bar in reader.load(M1, series, hour).items())
        return out

    def stored_candle(self, exchange: str, minute: datetime) -> Bar | None:
        """The candle the read model holds for ``exchange`` and ``minute`` (``None``: none)."""
        if not valid_series(exchange):
            return None
        return self.buckets.load(M1, exchange, M1.bucket_of(minute)).get(minute)

    def apply(
        self,
        minute_bars: Mapping[str, Mapping[datetime, Bar]],
        *,
        replace_candles_in: Window | None = None,
        low_priority: bool = False,
    ) -> RollupResult:
        """Merge 1-minute bars into the read model and update every level that depends on them.

        Args:
            minute_bars: Per series, bars by minute: an exchange's candles (the latest fetch wins) or
                its tick bars (``<exchange>-ticks``, merged reading by reading).
            replace_candles_in: Instead of merging, make every exchange's candle bars of this
                window exactly ``minute_bars`` (a minute absent there loses its bar): an exact
                rebuild after observations were deleted from ``btc.prices``.
            low_priority: History: let writers waiting for the read model's lock go first, and read
                the buckets a collection at a time (:meth:`~btc_pipeline.store.buckets.BucketStore.preload`).

        Returns:
            What changed.

        Raises:
            BucketConflictError: Another writer kept winning the race (after :data:`MAX_ATTEMPTS`).
        """
        with locked(
            self.db, "bars", low_priority=low_priority
        ):  # one writer at a time: FerretDB's compare-and-set is not atomic
            self.buckets.reset()  # what was read before the lock may have changed since
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    if low_priority:
                        self._preload(minute_bars)
                    return self._apply_once(minute_bars, replace_candles_in)
                except BucketConflictError as exc:
                    log.warning("read model: %s; starting over (attempt %d)", exc, attempt)
                    self.buckets.reset()
        raise BucketConflictError(f"the read model kept changing under this writer for {MAX_ATTEMPTS} attempts")

    def _preload(self, minute_bars: Mapping[str, Mapping[datetime, Bar]]) -> None:
        """Read every 1-minute bucket the bars (and their consensus) touch, a collection at a time."""
        hours = {M1.bucket_of(m) for bars in minute_bars.values() for m in bars}
        series = set(minute_bars) | set(self.series.candle_series()) | {CONSENSUS}
        for name in sorted(s for s in series if valid_series(s)):
            self.buckets.preload(M1, name, hours)

    def _apply_once(
        self, minute_bars: Mapping[str, Mapping[datetime, Bar]], replace_candles_in: Window | None
    ) -> RollupResult:
        changed: dict[str, set[datetime]] = defaultdict(set)  # series -> minutes changed
        if replace_candles_in is not None:
            exchanges = set(self.series.candle_series()) | {s for s in minute_bars if not is_tick_series(s)}
            for series in sorted(exchanges - {CONSENSUS}):
                given = minute_bars.get(series, {})
                for minute in replace_candles_in.minutes():
                    bucket = self.buckets.load(M1, series, M1.bucket_of(minute))
                    if bucket.set(minute, given.get(minute)):
                        changed[series].add(minute)
            minute_bars = {s: bars for s, bars in minute_bars.items() if is_tick_series(s)}
        for series, bars in minute_bars.items():
            if not valid_series(series) or series == CONSENSUS:
                log.warning("read model: %r cannot name a series; its bars stay in btc.prices only", series)
                continue
            ticks = is_tick_series(series)
            for minute, bar in bars.items():
                bucket = self.buckets.load(M1, series, M1.bucket_of(minute))
                old = bucket.get(minute)
                new = merge_ticks(old, bar) if ticks else (bar if candle_wins(bar, old) else old)
                if bucket.set(minute, new):
                    changed[series].add(minute)
        self.series.remember(changed)
        exchange_minutes = {m for s, minutes in changed.items() if not is_tick_series(s) for m in minutes}
        if exchange_minutes:
            changed[CONSENSUS] |= self._recompute_consensus(exchange_minutes)
        for series, minutes in changed.items():
            self._cascade(series, minutes)
        changed_minutes = {s: len(m) for s, m in changed.items() if m}
        return RollupResult(changed_minutes, self.buckets.save_all(LEVELS))

    def _recompute_consensus(self, minutes: Iterable[datetime]) -> set[datetime]:
        """Recompute the consensus of each minute from every exchange's candle of it."""
        exchanges = self.series.candle_series()
        changed: set[datetime] = set()
        for minute in sorted(minutes):
            hour = M1.bucket_of(minute)
            bars = [b for x in exchanges if (b := self.buckets.load(M1, x, hour).get(minute)) is not None]
            if self.buckets.load(M1, CONSENSUS, hour).set(minute, median_bar(bars)):
                changed.add(minute)
        return changed

    def _cascade(self, series: str, minutes: Iterable[datetime]) -> None:
        """Recompute the 5-minute, hourly and daily bars of ``series`` that hold ``minutes``."""
        hours = {M1.bucket_of(m) for m in minutes}
        five_minutes = {M5.bar_start(m) for m in minutes}
        days: set[datetime] = set()
        for start in sorted(five_minutes):
            minute_bucket = self.buckets.load(M1, series, M1.bucket_of(start))
            bar = aggregate(minute_bucket.slice(start, start + M5.bar), of_minutes=True)
            self.buckets.load(M5, series, M5.bucket_of(start)).set(start, bar)
        for hour in sorted(hours):
            bar = aggregate(self.buckets.load(M1, series, hour).bars, of_minutes=True)
            self.buckets.load(H1, series, H1.bucket_of(hour)).set(hour, bar)
            days.add(D1.bar_start(hour))
        for day in sorted(days):
            hourly = self.buckets.load(H1, series, H1.bucket_of(day))
            bar = aggregate(hourly.slice(day, day + D1.bar), of_minutes=False)
            self.buckets.load(D1, series, D1.bucket_of(day)).set(day, bar)
