"""The API's query parameters: from text to a window, an interval, a series and a format, with the
documented limits. Pure functions; a bad value raises :class:`ParameterError` naming the parameter
(the app answers it with 422).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from btc_pipeline.bars import BAR_LENGTH, Interval
from btc_pipeline.config import KNOWN_EXCHANGES
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.export import FORMATS
from btc_pipeline.store import CONSENSUS, tick_series
from btc_pipeline.timeutil import TIME_HELP, floor_minute, parse_time
from btc_pipeline.window import MINUTE, RangeError, Window, checked_range, in_words

#: What ``source`` may name for candles: the consensus, an exchange's candles, an exchange's ticker readings.
CANDLE_SOURCES = (CONSENSUS, *KNOWN_EXCHANGES, *(tick_series(x) for x in KNOWN_EXCHANGES))
#: What ``source`` may name for gaps (left out: any exchange).
GAP_SOURCES = KNOWN_EXCHANGES
#: What ``format`` may be for candles, and each one's media type.
ApiFormat = Literal["json", "csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {"json": "application/json", **{f: FORMATS[f][0] for f in ("csv", "parquet")}}

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


class ParameterError(BtcPipelineError, ValueError):
    """A query parameter cannot be used; ``parameter`` names it and the message says why."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


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
    since = time_param("from", start, now) if start is not None else min(to, latest) - default_span
    try:
        return checked_range(since, to, latest=latest, clip=clip, longest=longest)
    except RangeError as exc:
        parameter = "to" if exc.bound == "to" else "from"
        raise ParameterError(parameter, f"{parameter}: {exc}{hint if exc.bound == 'range' else ''}") from None


@dataclass(frozen=True)
class CandleQuery:
    """A validated candles request: the whole range asked for, and the page of it to answer now."""

    series: str
    interval: Interval
    window: Window
    page: Window
    limit: int
    format: ApiFormat

    @property
    def next_from(self) -> datetime | None:
        """Where the next page starts (``None``: this page ends the range)."""
        return self.page.end if self.page.end < self.window.end else None


def candle_query(
    *,
    interval: Interval,
    source: str,
    start: str | None,
    end: str | None,
    limit: int,
    fmt: ApiFormat,
    now: datetime,
) -> CandleQuery:
    """Check a candles request and cut its first page.

    ``to`` defaults to now (every bar that has started), and a later ``to`` is cut back to that:
    there are no candles after it. ``from`` defaults to ``to`` minus :data:`DEFAULT_SPAN` of the
    interval. A page holds at most ``limit`` bar slots, so it is the first ``limit`` intervals of
    the range.

    ``interval``, ``format`` and ``limit`` are typed, and FastAPI refuses other values with a 422
    before this is called (see the route); ``source`` depends on the exchanges known.

    Raises:
        ParameterError: Unknown source; a malformed time; ``from`` not before ``to``; a range above
            :data:`MAX_RANGE`.
    """
    source = choice("source", source, CANDLE_SOURCES)
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
