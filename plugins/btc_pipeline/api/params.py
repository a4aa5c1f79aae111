"""The API's query parameters: from text to a window, an interval, a series and a format, with the
documented limits. Pure functions; a bad value raises :class:`ParameterError` naming the parameter
(the app answers it with 422).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from btc_pipeline.bars import BAR_LENGTH, INTERVALS
from btc_pipeline.config import KNOWN_EXCHANGES
from btc_pipeline.store import CONSENSUS, tick_series
from btc_pipeline.timeutil import TIME_HELP, floor_minute, format_ts, parse_time
from btc_pipeline.window import MINUTE, Window

#: What ``source`` may name for candles: the consensus, an exchange's candles, an exchange's ticker readings.
CANDLE_SOURCES = (CONSENSUS, *KNOWN_EXCHANGES, *(tick_series(x) for x in KNOWN_EXCHANGES))
#: What ``source`` may name for gaps (left out: any exchange).
GAP_SOURCES = KNOWN_EXCHANGES
FORMATS = ("json", "csv", "parquet")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

HOUR = timedelta(hours=1)
#: The longest ``[from, to)`` of one candles request, per interval (pages of it follow ``next``).
MAX_RANGE = {
    "1m": timedelta(days=31),
    "5m": timedelta(days=366),
    "1h": timedelta(days=3660),
    "1d": timedelta(days=7320),
}
#: The range of a candles request without ``from``: about a day of bars or less.
DEFAULT_SPAN = {"1m": timedelta(hours=24), "5m": timedelta(days=7), "1h": timedelta(days=30), "1d": timedelta(days=365)}
#: Bars per page of candles.
MAX_LIMIT = 5000
DEFAULT_LIMIT = 5000
#: The longest range of a gaps request, and its default.
MAX_GAP_RANGE = timedelta(days=31)
DEFAULT_GAP_SPAN = timedelta(hours=24)

TIME_DOC = "Time: " + TIME_HELP + "."


class ParameterError(ValueError):
    """A query parameter cannot be used; ``parameter`` names it and the message says why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def in_words(span: timedelta) -> str:
    """A duration in words: days (two decimals at most) above a day, else hours, else minutes."""
    days = span / timedelta(days=1)
    if days > 1:
        return f"{round(days, 2):g} days"
    return f"{round(span / HOUR, 2):g} hours" if span >= HOUR else f"{round(span / MINUTE):d} minutes"


def per_interval(spans: dict[str, timedelta]) -> str:
    """``spans`` in words, for the docs: ``24 hours at 1m, 7 days at 5m, ...``."""
    return ", ".join(f"{in_words(span)} at {interval}" for interval, span in spans.items())


def choice(parameter: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``.

    Raises:
        ParameterError: It is not; the message lists what is.
    """
    if value not in allowed:
        raise ParameterError(parameter, f"{parameter}={value!r} is not one of {', '.join(allowed)}")
    return value


def time_param(parameter: str, value: str, now: datetime) -> datetime:
    """A ``from`` / ``to`` value: ISO-8601, ``now``, or an age (``2h``, ``30d``), floored to the minute.

    Raises:
        ParameterError: Not a time of those forms, or before 2009-01-03; the message names ``parameter``.
    """
    try:
        return parse_time(value, now=now)
    except ValueError as exc:
        raise ParameterError(parameter, f"{parameter}: {exc}") from None


def time_range(
    start: str | None,
    end: str | None,
    now: datetime,
    *,
    latest: datetime,
    clip: bool,
    default_span: timedelta,
    longest: timedelta,
    hint: str = "",
) -> Window:
    """``[from, to)`` from the ``from`` and ``to`` parameters, or their defaults.

    ``to`` defaults to ``latest``, the end of what exists now; a later ``to`` is cut back to it
    (``clip``) or refused, so no time beyond now (up to year 9999) reaches window arithmetic.
    ``from`` defaults to ``to`` minus ``default_span``; ``hint`` is added to the message of a range
    longer than ``longest``.

    Raises:
        ParameterError: A malformed time, ``to`` after ``latest`` (unless ``clip``), ``from`` not
            before ``to``, or a range longer than ``longest``.
    """
    to = time_param("to", end, now) if end is not None else latest
    if to > latest and not clip:
        raise ParameterError("to", f"to={format_ts(to)} is in the future: the latest possible is {format_ts(latest)}")
    to = min(to, latest)
    since = time_param("from", start, now) if start is not None else to - default_span
    if since >= to:
        raise ParameterError(
            "from",
            f"from={format_ts(since)} is not before to={format_ts(to)}: ranges are [from, to), "
            f"and end at {format_ts(latest)} at the latest",
        )
    if to - since > longest:
        raise ParameterError(
            "from", f"from..to spans {in_words(to - since)}, more than the {in_words(longest)} allowed{hint}"
        )
    return Window(since, to)


@dataclass(frozen=True)
class CandleQuery:
    """A validated candles request: the whole range asked for, and the page of it to answer now."""

    series: str
    interval: str
    window: Window
    page: Window
    limit: int
    format: str

    @property
    def next_from(self) -> datetime | None:
        """Where the next page starts (``None``: this page ends the range)."""
        return self.page.end if self.page.end < self.window.end else None


def candle_query(
    *,
    interval: str,
    source: str,
    start: str | None,
    end: str | None,
    limit: int,
    fmt: str,
    now: datetime,
) -> CandleQuery:
    """Check a candles request and cut its first page.

    ``to`` defaults to now (every bar that has started), and a later ``to`` is cut back to that:
    there are no candles after it. ``from`` defaults to ``to`` minus :data:`DEFAULT_SPAN` of the
    interval. A page holds at most ``limit`` bar slots, so it is the first ``limit`` intervals of
    the range.

    Raises:
        ParameterError: Unknown interval, source or format; a malformed time; ``from`` not before
            ``to``; a range above :data:`MAX_RANGE`; a limit outside 1..:data:`MAX_LIMIT`.
    """
    interval = choice("interval", interval, INTERVALS)
    source = choice("source", source, CANDLE_SOURCES)
    fmt = choice("format", fmt, FORMATS)
    if not 1 <= limit <= MAX_LIMIT:
        raise ParameterError("limit", f"limit={limit} is outside 1..{MAX_LIMIT} (bars per page)")
    window = time_range(
        start,
        end,
        now,
        latest=floor_minute(now) + MINUTE,
        clip=True,
        default_span=DEFAULT_SPAN[interval],
        longest=MAX_RANGE[interval],
        hint=f" at interval={interval}: narrow the range or use a coarser interval",
    )
    step = BAR_LENGTH[interval] * limit
    page_end = window.end if window.end - window.start <= step else window.start + step
    return CandleQuery(source, interval, window, Window(window.start, page_end), limit, fmt)


def gap_window(*, start: str | None, end: str | None, source: str | None, now: datetime) -> tuple[Window, str | None]:
    """Check a gaps request: ``[from, to)`` up to the last closed minute, as the CLI's ``gaps``.

    ``to`` defaults to now (the last closed minute), ``from`` to ``to`` minus 24 h.

    Raises:
        ParameterError: A malformed time; ``to`` in the future; ``from`` not before ``to``; a range
            above :data:`MAX_GAP_RANGE`; an unknown exchange.
    """
    if source is not None:
        source = choice("source", source, GAP_SOURCES)
    window = time_range(
        start, end, now, latest=floor_minute(now), clip=False, default_span=DEFAULT_GAP_SPAN, longest=MAX_GAP_RANGE
    )
    return window, source
