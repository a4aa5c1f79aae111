"""Time windows: the ``[start, end)`` intervals that ingest runs and backfills work on, and the one
check of a ``[from, to)`` range that the CLI, the read API and the backfill share."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.timeutil import floor_minute, format_ts, to_utc

__all__ = ["MINUTE", "RangeError", "Window", "checked_range", "floor_minute"]

MINUTE = timedelta(minutes=1)


def _plain_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: pass a timezone-aware UTC datetime")
    return to_utc(ts)


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval ``[start, end)`` aligned to whole minutes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None:
                raise ValueError(f"window {name} {value!r} is naive; pass a timezone-aware UTC datetime")
            if value != floor_minute(value):
                raise ValueError(f"window {name} {format_ts(value)} is not on a whole minute")
        if self.end <= self.start:
            raise ValueError(f"window end {format_ts(self.end)} is not after start {format_ts(self.start)}")

    @classmethod
    def of(cls, start: datetime, end: datetime) -> Window:
        """Build a window from any aware datetimes (pendulum's included), as plain UTC datetimes."""
        return cls(_plain_utc(start), _plain_utc(end))

    def minutes(self) -> Iterator[datetime]:
        """The start of every minute in the window."""
        ts = self.start
        while ts < self.end:
            yield ts
            ts += MINUTE

    @property
    def minute_count(self) -> int:
        return int((self.end - self.start) / MINUTE)

    def contains(self, ts: datetime) -> bool:
        return self.start <= ts < self.end

    def chunks(self, max_minutes: int) -> Iterator[Window]:
        """Split into consecutive windows of at most ``max_minutes`` minutes."""
        step = MINUTE * max_minutes
        start = self.start
        while start < self.end:
            end = min(start + step, self.end)
            yield Window(start, end)
            start = end

    def __str__(self) -> str:
        return f"[{format_ts(self.start)}, {format_ts(self.end)})"


class RangeError(BtcPipelineError, ValueError):
    """A ``[from, to)`` range that cannot be used. ``bound`` says which end is wrong (``from``,
    ``to``, or ``range`` for its length), so that each caller names its own parameter (``--to``,
    ``to``, ``end``)."""

    def __init__(self, bound: Literal["from", "to", "range"], message: str) -> None:
        super().__init__(message)
        self.bound = bound


def in_words(span: timedelta) -> str:
    """A duration in words: days (two decimals at most) above a day, else hours, else minutes."""
    days = span / timedelta(days=1)
    if days > 1:
        return f"{round(days, 2):g} days"
    hour = timedelta(hours=1)
    return f"{round(span / hour, 2):g} hours" if span >= hour else f"{round(span / MINUTE):d} minutes"


def checked_range(
    start: datetime, end: datetime, *, latest: datetime, clip: bool = False, longest: timedelta | None = None
) -> Window:
    """The range ``[start, end)``, floored to the minute, if it can be used.

    Args:
        start: Where it starts.
        end: Where it ends (exclusive).
        latest: The latest end there can be (for closed candles: the start of the current minute),
            so that no time beyond now, up to year 9999, reaches window arithmetic.
        clip: Cut an ``end`` after ``latest`` back to it instead of refusing it.
        longest: The longest range allowed, if any.

    Returns:
        The range as a window.

    Raises:
        RangeError: ``end`` after ``latest`` (``to``, unless ``clip``), ``start`` not before
            ``end`` (``from``), or longer than ``longest`` (``range``).
    """
    start, end, latest = floor_minute(start), floor_minute(end), floor_minute(latest)
    if end > latest and not clip:
        raise RangeError("to", f"{format_ts(end)} is in the future: the latest possible end is {format_ts(latest)}")
    end = min(end, latest)
    if start >= end:
        raise RangeError(
            "from",
            f"{format_ts(start)} is not before the end {format_ts(end)}: ranges are [from, to), "
            f"and end at {format_ts(latest)} at the latest",
        )
    if longest is not None and end - start > longest:
        raise RangeError("range", f"the range spans {in_words(end - start)}, more than the {in_words(longest)} allowed")
    return Window(start, end)
