"""Backfill planning: which ranges a backfill may take, and how a range is cut into chunks.

A range is split into chunks (:func:`plan_chunks`), each at most a day and a whole number of the
serving exchange's pages (:func:`chunk_minutes`): 7 days from Coinbase (300 rows per request) are
9 chunks and 34 requests, not 10,080 one-minute runs. A range no exchange can serve, or that is
not over yet, is refused here (:func:`check_backfill_window`), as are a run's bad parameters
(:func:`backfill_request`). Chunks are fetched by :mod:`btc_pipeline.steps.backfill`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from btc_pipeline.config import KNOWN_EXCHANGES
from btc_pipeline.exchanges import limits_of
from btc_pipeline.timeutil import format_ts, parse_iso
from btc_pipeline.window import MINUTE, RangeError, Window, checked_range, floor_minute

#: The two ways a backfill travels. ``live``: chunks of a day, produced to ``BTC_TOPIC`` and stored
#: by ``btc_drain`` with the live data (heals, short ranges). ``history``: chunks of
#: :data:`HISTORY_CHUNK_MINUTES` whose pages are fetched concurrently, produced to
#: ``BTC_HISTORY_TOPIC`` and stored by ``btc_history_drain`` in large batches, the read model
#: written once per batch, never in front of live data.
Lane = Literal["live", "history"]
LANES: tuple[Lane, ...] = ("live", "history")
#: The largest chunk one task fetches in the live lane: a day.
MAX_CHUNK_MINUTES = 1440
#: The largest chunk of the history lane: 15 days (Airflow's per-task cost, seconds on two
#: cores, is paid 25 times for a year instead of 365 times).
HISTORY_CHUNK_MINUTES = 15 * 1440
#: The longest range one backfill run takes (Airflow maps at most 1024 task instances per task).
MAX_BACKFILL_DAYS = 366
#: Chunk tasks of one run at the same time: while one pays Airflow's per-task cost (6.5 s measured
#: on two cores), the others fetch. They share the exchange's request rate
#: (:mod:`btc_pipeline.exchanges.pace`); the rest of Airflow's worker slots stay with live data.
CHUNKS_AT_ONCE = 3


def chunk_minutes(exchange: str, lane: Lane = "live") -> int:
    """The chunk size for ``exchange``: a whole number of its pages, at most a day (the history
    lane: :data:`HISTORY_CHUNK_MINUTES`) and its horizon.

    Args:
        exchange: Exchange name.
        lane: ``live`` or ``history``.

    Returns:
        Minutes per chunk (live: Coinbase 1200 = 4 requests, Binance/Bitstamp 1000 = 1, Kraken 720
        = 1; history: Coinbase 21,600 = 72 requests, Binance/Bitstamp 21,000 = 21).

    Raises:
        ValueError: The exchange is unknown.
    """
    limits = limits_of(exchange)
    page = limits.rows_per_request
    largest = HISTORY_CHUNK_MINUTES if lane == "history" else MAX_CHUNK_MINUTES
    size = page * max(1, largest // page)
    return min(size, largest, limits.horizon_minutes or size)


def request_count(window: Window, exchange: str) -> int:
    """How many candle requests ``exchange``'s ``fetch_candles`` makes for ``window``.

    Args:
        window: The range fetched in one call.
        exchange: Exchange name.

    Returns:
        The number of HTTP requests (without retries).
    """
    return len(limits_of(exchange).pages(window))


def exchange_horizons(exchanges: Sequence[str]) -> list[int]:
    return [h for h in (limits_of(x).horizon_minutes for x in exchanges) if h is not None]


def plan_chunks(ranges: Sequence[Window], max_minutes: int) -> list[Window]:
    """Cover ``ranges`` with as few chunks of at most ``max_minutes`` as a greedy pass finds.

    Ranges closer together than a chunk share one (the minutes between them are fetched in the
    same requests, at no extra cost); a range longer than a chunk is split.

    Args:
        ranges: Disjoint windows to fill, in any order.
        max_minutes: The largest chunk, in minutes (see :func:`chunk_minutes`).

    Returns:
        Consecutive-in-time, non-overlapping chunks covering every minute of ``ranges``.

    Raises:
        ValueError: ``max_minutes`` is not positive, or two ranges overlap.
    """
    if max_minutes < 1:
        raise ValueError(f"max_minutes={max_minutes} must be at least 1")
    chunks: list[Window] = []
    for wanted in sorted(ranges, key=lambda w: w.start):
        # the last chunk ends where the previous range ends
        if chunks and wanted.start < chunks[-1].end:
            raise ValueError(f"range {wanted} overlaps the previous one (ends {format_ts(chunks[-1].end)})")
        for piece in wanted.chunks(max_minutes):
            if chunks and piece.end - chunks[-1].start <= MINUTE * max_minutes:
                chunks[-1] = Window(chunks[-1].start, piece.end)  # the gap and the piece join the last chunk
            else:
                chunks.append(piece)
    return chunks


def check_backfill_window(window: Window, exchanges: Sequence[str], now: datetime) -> None:
    """Refuse a range no configured exchange could serve, or that is not over yet.

    Args:
        window: The range to backfill.
        exchanges: The exchanges that will be asked, in failover order (``BTC_EXCHANGES`` or the one
            source asked for: never empty).
        now: The current time.

    Raises:
        RangeError: The range ends after the last closed minute (``to``), is longer than
            :data:`MAX_BACKFILL_DAYS` (``range``), or every exchange has a horizon (Kraken: 720
            minutes) that the range's start is beyond (``from``).
    """
    # a backfill covers closed minutes only, at most MAX_BACKFILL_DAYS at once
    checked_range(window.start, window.end, latest=floor_minute(now), longest=timedelta(days=MAX_BACKFILL_DAYS))
    horizons = exchange_horizons(exchanges)
    if len(horizons) == len(exchanges):  # every exchange has a horizon: the oldest minute all of them serve
        oldest = floor_minute(now) - MINUTE * (min(horizons) - 1)
        if window.start < oldest:
            raise RangeError(
                "from",
                f"the range starts at {format_ts(window.start)}, beyond the horizon of {', '.join(exchanges)} "
                f"(only minutes from {format_ts(oldest)} on are served; Kraken keeps 720): "
                "use another exchange for older minutes",
            )


def required_time(params: Mapping[str, Any], name: str) -> datetime:
    """The run parameter ``name``: an ISO-8601 time (``Z``, an offset, or naive = UTC), required.

    Raises:
        ValueError: It is missing or not ISO-8601; the message names it.
    """
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"parameter {name!r} is required: an ISO-8601 UTC time such as 2026-11-24T10:00:00Z")
    return parse_iso(value, f"parameter {name}")


def backfill_request(params: Mapping[str, Any], now: datetime) -> tuple[Window, str | None, bool]:
    """Validate a ``btc_backfill`` run's parameters.

    Args:
        params: ``start``, ``end`` (ISO-8601, floored to the minute), ``source`` (an exchange or
            null = the configured failover order), ``only_missing`` (bool).
        now: The current time (the range ends at the last closed minute at the latest).

    Returns:
        The range, the source and whether only missing minutes are to be filled.

    Raises:
        ValueError: A parameter is missing or invalid; the message names it.
    """
    start, end = required_time(params, "start"), required_time(params, "end")
    try:
        window = checked_range(start, end, latest=floor_minute(now))
    except RangeError as exc:
        raise ValueError(f"parameters start/end: {exc}") from None
    source = params.get("source") or None
    if source is not None and source not in KNOWN_EXCHANGES:
        raise ValueError(f"parameter source={source!r} is not an exchange; known: {', '.join(KNOWN_EXCHANGES)}")
    only_missing = params.get("only_missing", False)
    if not isinstance(only_missing, bool):
        raise ValueError(f"parameter only_missing={only_missing!r} must be true or false")
    return window, source, only_missing


def requested_lane(params: Mapping[str, Any]) -> Lane:
    """The run parameter ``lane``: ``history`` (the default) or ``live`` (see :data:`Lane`).

    Raises:
        ValueError: It is neither; the message names it.
    """
    lane = params.get("lane") or "history"
    if lane not in LANES:
        raise ValueError(f"parameter lane={lane!r} must be one of {', '.join(LANES)}")
    return lane  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill run will do: its range, the chunks and how many requests they take."""

    window: Window
    exchanges: tuple[str, ...]
    chunk_minutes: int
    chunks: list[Window]
    only_missing: bool
    lane: Lane = "live"

    @property
    def requests(self) -> int:
        """Candle requests to the first exchange if it serves every chunk."""
        return sum(request_count(chunk, self.exchanges[0]) for chunk in self.chunks)

    @property
    def minutes(self) -> int:
        return sum(chunk.minute_count for chunk in self.chunks)


def plan_backfill(
    window: Window, exchanges: Sequence[str], *, gaps: Sequence[Window] | None = None, lane: Lane = "live"
) -> BackfillPlan:
    """Plan the chunks of a backfill of ``window`` (or only of its ``gaps``).

    Args:
        window: The range asked for.
        exchanges: Exchanges in failover order (never empty); the first one's page size sets the chunk size.
        gaps: When given, only these ranges inside ``window`` are planned (``--missing``, heal).
        lane: ``live`` (chunks of a day) or ``history`` (larger chunks, see :data:`Lane`).

    Returns:
        The plan.

    Raises:
        ValueError: A gap outside ``window``.
    """
    size = chunk_minutes(exchanges[0], lane)
    if gaps is None:
        ranges = [window]
    else:
        for gap in gaps:
            if gap.start < window.start or gap.end > window.end:
                raise ValueError(f"gap {gap} is outside the range {window}")
        ranges = list(gaps)
    return BackfillPlan(
        window=window,
        exchanges=tuple(exchanges),
        chunk_minutes=size,
        chunks=plan_chunks(ranges, size),
        only_missing=gaps is not None,
        lane=lane,
    )
