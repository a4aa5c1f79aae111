"""Rebuild the read model of a range from ``btc.prices`` (``btc-pipeline rollups rebuild``).

The way to recover after a bulk import into ``btc.prices`` or a change of the read model's layout:
one pass over the range's observations (on FerretDB a range query reads the whole collection
once, so one pass, not one per day), their 1-minute bars gathered per series and day in compact
arrays, then merged into the read model a day at a time with the drain's own rules. Merging is
idempotent and never removes a bar, so a rebuild may run while the drain does, and may be run
again.

``exact``: the exchanges' candle bars of the range are made exactly what ``btc.prices`` holds, so
a bar whose candle was deleted from ``btc.prices`` goes too (tick bars are still merged: expired
ticks keep their bars). Run it with ``btc_drain`` paused, or on a range the drain is not writing.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from pymongo.database import Database

from btc_pipeline.bars import Bar, candle_wins, merge_ticks, tick_bar
from btc_pipeline.store.collections import NO_TRADE_MINUTES, PRICES
from btc_pipeline.store.layout import CONSENSUS, M1, M5, epoch_ms, tick_series, valid_series
from btc_pipeline.store.notrades import copy_no_trade_minutes
from btc_pipeline.store.rollups import Rollups
from btc_pipeline.timeutil import to_utc
from btc_pipeline.window import Window

log = logging.getLogger(__name__)

DAY = timedelta(days=1)
#: Progress callback: (phase, done, total or None).
ProgressCallback = Callable[[str, int, int | None], None]


@dataclass
class RebuildSummary:
    """What a rebuild did."""

    window: Window
    scanned: int = 0
    candles: int = 0
    ticks: int = 0
    skipped: int = 0
    days: int = 0
    series: set[str] = field(default_factory=set)
    minutes_changed: int = 0
    buckets_written: int = 0
    no_trade_minutes: int = 0
    scan_s: float = 0.0
    write_s: float = 0.0


#: Rows of a day's array: the bar's values and its provenance (NaN = no bar in that minute).
OPEN, HIGH, LOW, CLOSE, VOLUME, FETCHED, FIRST, LAST = range(8)


class _Day:
    """One series' 1-minute bars of one UTC day while the scan gathers them: 8 x 1440 floats
    (92 KB), so that a year of five series fits in under 200 MB."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values = np.full((8, 1440), np.nan)

    def merge_candle(self, slot: int, bar: Bar) -> None:
        column = self.values[:, slot]
        if candle_wins(bar, None if math.isnan(column[CLOSE]) else self.bar(slot)):
            column[:] = [bar.open, bar.high, bar.low, bar.close, _nan(bar.volume), _nan(bar.fetched), np.nan, np.nan]

    def merge_tick(self, slot: int, bar: Bar) -> None:
        column = self.values[:, slot]
        old = None if math.isnan(column[CLOSE]) else self.bar(slot)
        new = merge_ticks(old, bar)
        column[:] = [new.open, new.high, new.low, new.close, np.nan, np.nan, _nan(new.first), _nan(new.last)]

    def bar(self, slot: int) -> Bar:
        o, h, lo, c, v, f, first, last = (float(x) for x in self.values[:, slot])
        return Bar(o, h, lo, c, _none(v), 1, fetched=_int(f), first=_int(first), last=_int(last))

    def bars(self) -> dict[int, Bar]:
        return {int(slot): self.bar(int(slot)) for slot in np.flatnonzero(~np.isnan(self.values[CLOSE]))}


def _nan(value: float | int | None) -> float:
    return np.nan if value is None else float(value)


def _none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _int(value: float) -> int | None:
    return None if math.isnan(value) else int(value)


def rebuild(
    db: Database[Any], window: Window, *, progress: ProgressCallback | None = None, exact: bool = False
) -> RebuildSummary:
    """Rebuild the read model of ``window`` from ``btc.prices`` (and the no-trade minutes).

    Args:
        db: The ``btc`` database.
        window: The range ``[start, end)`` whose minutes are rebuilt (whole minutes).
        progress: Called with ``("scan", documents, None)`` during the scan and
            ``("write", days done, days)`` while writing.
        exact: Replace the candle bars of the range instead of merging (see the module docstring).

    Returns:
        What was scanned and written.
    """
    report = progress or (lambda phase, done, total: None)
    summary = RebuildSummary(window)
    started = time.monotonic()
    days: dict[datetime, dict[str, _Day]] = defaultdict(dict)  # midnight -> series -> its bars of the day
    query = {"kind": {"$in": ["candle_1m", "tick"]}, "ts": {"$gte": window.start, "$lt": window.end}}  # kind_ts
    fields = {"_id": 0, "source": 1, "kind": 1, "ts": 1, "price": 1, "open": 1, "high": 1, "low": 1, "close": 1}
    fields |= {"volume": 1, "fetched_at": 1}
    for doc in db[PRICES].find(query, fields, batch_size=5000):
        summary.scanned += 1
        if summary.scanned % 20_000 == 0:
            report("scan", summary.scanned, None)
        try:
            series, minute, bar = _bar_of(doc)
        except (KeyError, TypeError, ValueError) as exc:
            summary.skipped += 1
            log.warning("rebuild: skipping a document of %s it cannot read: %s", PRICES, exc)
            continue
        if not valid_series(series):
            summary.skipped += 1
            continue
        midnight = minute.replace(hour=0, minute=0)
        day = days[midnight].setdefault(series, _Day())
        slot = int((minute - midnight).total_seconds() // 60)
        if doc["kind"] == "candle_1m":
            summary.candles += 1
            day.merge_candle(slot, bar)
        else:
            summary.ticks += 1
            day.merge_tick(slot, bar)
    report("scan", summary.scanned, summary.scanned)
    summary.scan_s = time.monotonic() - started

    started = time.monotonic()
    rollups = Rollups(db)
    touched = set(M5.buckets(window.start, window.end)) if exact else set()  # a 5-minute bucket is a UTC day
    ordered = sorted(set(days) | touched)
    summary.days = len(ordered)
    for done, midnight in enumerate(ordered, 1):
        batch = {
            series: {midnight + timedelta(minutes=slot): bar for slot, bar in gathered.bars().items()}
            for series, gathered in days.pop(midnight, {}).items()
        }
        span = Window(max(midnight, window.start), min(midnight + DAY, window.end)) if exact else None
        result = rollups.apply(batch, replace_candles_in=span)
        rollups.buckets.reset()  # one day's buckets at a time in memory
        summary.series |= set(batch)
        summary.minutes_changed += sum(n for s, n in result.changed_minutes.items() if s != CONSENSUS)
        summary.buckets_written += result.buckets_written
        report("write", done, len(ordered))
    summary.no_trade_minutes = copy_no_trade_minutes(db[NO_TRADE_MINUTES], db, window)
    summary.write_s = time.monotonic() - started
    return summary


def _bar_of(doc: dict[str, Any]) -> tuple[str, datetime, Bar]:
    ts = to_utc(doc["ts"])
    if doc["kind"] == "candle_1m":
        o, h, lo, c = (float(doc[name]) for name in ("open", "high", "low", "close"))
        if not all(math.isfinite(v) for v in (o, h, lo, c)):
            raise ValueError(f"a candle of {ts} has a price that is not a number")
        volume = doc.get("volume")
        bar = Bar(o, h, lo, c, None if volume is None else float(volume), 1, fetched=epoch_ms(doc["fetched_at"]))
        return str(doc["source"]), M1.bar_start(ts), bar
    if doc["kind"] == "tick":
        return tick_series(str(doc["source"])), M1.bar_start(ts), tick_bar(float(doc["price"]), epoch_ms(ts))
    raise ValueError(f"unknown kind {doc['kind']!r}")
