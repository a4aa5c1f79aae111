"""Gaps in the 1-minute candle series: which minutes of a range have no candle in ``btc.prices``,
told apart from the minutes an exchange said it had no trades in, merged into ranges.

"The exchange said so" is recorded in ``btc.no_trade_minutes``, one document per exchange and
minute: when an ingest or backfill fetched a window after the settle delay
(:data:`btc_pipeline.steps.ingest.CANDLE_SETTLE_DELAY`) and the exchange answered without a candle
for a minute, the task that fetched it records that minute. A minute with a candle is present
whatever that collection says.

The classification (:func:`classify_minutes`) is a pure function; :func:`find_gaps` feeds it with
what the store knows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any, Literal

from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import MINUTE, Window

if TYPE_CHECKING:
    from btc_pipeline.store import Store

Status = Literal["missing", "no_trades"]


@dataclass(frozen=True)
class MinuteRange:
    """Consecutive minutes ``[start, end)`` without a candle, all for the same reason.

    ``status`` is ``missing`` (a real hole: nobody said there were no trades) or ``no_trades``
    (``sources`` said they had no trades in those minutes).
    """

    start: datetime
    end: datetime
    status: Status
    sources: tuple[str, ...] = ()

    @property
    def minutes(self) -> int:
        return int((self.end - self.start) / MINUTE)

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_ts(self.start),
            "end": format_ts(self.end),
            "minutes": self.minutes,
            "status": self.status,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class GapReport:
    """The gaps of one range: how many minutes have a candle, and the ranges that have none."""

    window: Window
    source: str | None
    present: int
    ranges: list[MinuteRange] = field(default_factory=list)

    @property
    def missing(self) -> list[MinuteRange]:
        """The real holes (no candle, and no exchange said it had no trades)."""
        return [r for r in self.ranges if r.status == "missing"]

    @property
    def no_trades(self) -> list[MinuteRange]:
        """The minutes without a candle that an exchange said it had no trades in."""
        return [r for r in self.ranges if r.status == "no_trades"]

    @property
    def missing_minutes(self) -> int:
        return sum(r.minutes for r in self.missing)

    @property
    def no_trade_minutes(self) -> int:
        return sum(r.minutes for r in self.no_trades)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_ts(self.window.start),
            "end": format_ts(self.window.end),
            "source": self.source,
            "minutes": self.window.minute_count,
            "present": self.present,
            "missing_minutes": self.missing_minutes,
            "no_trade_minutes": self.no_trade_minutes,
            "ranges": [r.to_dict() for r in self.ranges],
        }


def classify_minutes(
    window: Window, present: Iterable[datetime], no_trades: Mapping[datetime, Collection[str]]
) -> list[MinuteRange]:
    """Merge the minutes of ``window`` that have no candle into ranges, by reason.

    Args:
        window: The range checked, ``[start, end)``.
        present: Minutes (their start) that have a candle; those outside the window are ignored.
        no_trades: For minutes an exchange said it had no trades in, the names of those exchanges.

    Returns:
        The ranges without a candle, oldest first; consecutive minutes of the same status are one
        range (a ``no_trades`` range lists every exchange that reported any of its minutes).
    """
    have = set(present)

    def status(minute: datetime) -> Status | None:
        if minute in have:
            return None
        return "no_trades" if no_trades.get(minute) else "missing"

    ranges: list[MinuteRange] = []
    for run_status, run in groupby(window.minutes(), key=status):
        if run_status is not None:
            minutes = list(run)
            sources = {source for minute in minutes for source in no_trades.get(minute, ())}
            ranges.append(MinuteRange(minutes[0], minutes[-1] + MINUTE, run_status, tuple(sorted(sources))))
    return ranges


def merge_minutes(minutes: Iterable[datetime]) -> list[Window]:
    """Merge minute starts into the fewest consecutive windows.

    Args:
        minutes: Whole-minute UTC datetimes, in any order, duplicates allowed.

    Returns:
        Disjoint windows covering exactly those minutes, oldest first.
    """
    runs: list[list[datetime]] = []  # [start, end] of each run so far
    for minute in sorted(set(minutes)):
        if runs and runs[-1][1] == minute:
            runs[-1][1] = minute + MINUTE
        else:
            runs.append([minute, minute + MINUTE])
    return [Window(start, end) for start, end in runs]


def combine_reports(before: GapReport, parts: Mapping[Window, GapReport]) -> GapReport:
    """The gaps of ``before``'s range now, from an older report of the whole range and newer reports
    of some of its parts (disjoint): each part's ranges replace the older ones inside it, and
    adjacent ranges of the same status are merged again.

    Args:
        before: A report of the whole range.
        parts: Newer reports of parts of it, by part.

    Returns:
        The combined report.
    """
    pieces: list[MinuteRange] = []
    covered = sorted(parts, key=lambda w: w.start)
    for r in before.ranges:
        start = r.start
        for part in covered:  # the parts of r outside every newer report still hold
            if part.end <= start or part.start >= r.end:
                continue
            if part.start > start:
                pieces.append(MinuteRange(start, part.start, r.status, r.sources))
            start = max(start, part.end)
        if start < r.end:
            pieces.append(MinuteRange(start, r.end, r.status, r.sources))
    pieces += [r for report in parts.values() for r in report.ranges]
    merged: list[MinuteRange] = []
    for r in sorted(pieces, key=lambda x: x.start):
        last = merged[-1] if merged else None
        if last is not None and last.end == r.start and last.status == r.status:
            merged[-1] = MinuteRange(last.start, r.end, r.status, tuple(sorted({*last.sources, *r.sources})))
        else:
            merged.append(r)
    absent = sum(r.minutes for r in merged)
    return GapReport(before.window, before.source, before.window.minute_count - absent, merged)


def find_gaps(store: Store, window: Window, symbol: str, source: str | None = None) -> GapReport:
    """The gaps of ``window`` in ``btc.prices``: real holes and minutes without trades, as ranges.

    Args:
        store: The ``btc`` database.
        window: The range to check.
        symbol: The pipeline's symbol.
        source: Check the candles of this exchange only (and only its no-trade reports); any
            exchange when ``None``.

    Returns:
        The report (see :class:`GapReport`).
    """
    present = store.present_minutes(window, source)
    no_trades = store.no_trade_reports(window, symbol, source)
    return GapReport(
        window=window,
        source=source,
        present=len(present),
        ranges=classify_minutes(window, present, no_trades),
    )
