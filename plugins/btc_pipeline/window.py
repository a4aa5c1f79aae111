"""Time windows: the ``[start, end)`` intervals that ingest runs and backfills work on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from btc_pipeline.timeutil import floor_minute, to_utc

__all__ = ["MINUTE", "Window", "floor_minute"]

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
                raise ValueError(f"window {name} {value.isoformat()} is not on a whole minute")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end.isoformat()} is not after start {self.start.isoformat()}")

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
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"
