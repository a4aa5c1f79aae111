"""Backfill and healing: re-ingest ranges of 1-minute candles from the exchanges' history, in chunks.

A range is split into chunks (:func:`plan_chunks`), each fetched with the serving exchange's own
paging ``fetch_candles`` and produced to ``btc-metrics`` with the idempotent producer, so backfilled
candles reach MongoDB through the drain exactly like live ones (same keys, same upsert). A chunk is
at most a day and a whole number of the exchange's pages (:func:`chunk_minutes`): 7 days from
Coinbase (300 rows per request) are 9 chunks and 34 requests, not 10,080 one-minute runs.

Minutes the exchange answered without a candle, once the settle delay has passed, are recorded in
``btc.no_trade_minutes`` (:mod:`btc_pipeline.steps.gaps`); a missing minute younger than the settle
delay fails the chunk with :class:`~btc_pipeline.steps.ingest.CandlesNotReadyError`, so Airflow retries it.

The Airflow task bodies that call these functions are in :mod:`btc_pipeline.tasks.backfill`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import KNOWN_EXCHANGES, Settings
from btc_pipeline.exchanges import Exchange, limits_of
from btc_pipeline.steps.gaps import find_gaps
from btc_pipeline.steps.ingest import (
    AllExchangesFailedError,
    CandlesNotReadyError,
    candle_observations,
    fetch_window,
    settled_missing,
)
from btc_pipeline.stream import DeliveryError, Record, produce_all
from btc_pipeline.timeutil import format_ts, parse_iso
from btc_pipeline.window import MINUTE, RangeError, Window, checked_range, floor_minute

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: The largest chunk one task fetches: a day.
MAX_CHUNK_MINUTES = 1440
#: The longest range one backfill run takes (Airflow maps at most 1024 task instances per task).
MAX_BACKFILL_DAYS = 366
#: The heal leaves the most recent minutes to the live ingest, which may still be retrying them.
HEAL_LAG = timedelta(minutes=10)
#: Slack between a heal run's planned time and its chunks' fetches, kept off the horizon limit.
HORIZON_MARGIN = timedelta(minutes=30)


def chunk_minutes(exchange: str) -> int:
    """The chunk size for ``exchange``: a whole number of its pages, at most a day and its horizon.

    Args:
        exchange: Exchange name.

    Returns:
        Minutes per chunk (Coinbase 1200 = 4 requests, Binance/Bitstamp 1000 = 1, Kraken 720 = 1).

    Raises:
        ValueError: The exchange is unknown.
    """
    limits = limits_of(exchange)
    page = limits.rows_per_request
    size = page * max(1, MAX_CHUNK_MINUTES // page)
    return min(size, MAX_CHUNK_MINUTES, limits.horizon_minutes or size)


def request_count(window: Window, exchange: str) -> int:
    """How many candle requests ``exchange``'s ``fetch_candles`` makes for ``window``.

    Args:
        window: The range fetched in one call.
        exchange: Exchange name.

    Returns:
        The number of HTTP requests (without retries).
    """
    limits = limits_of(exchange)
    if limits.single_request:
        return 1
    return math.ceil(window.minute_count / limits.rows_per_request)


def _horizons(exchanges: Sequence[str]) -> list[int]:
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
    limit = MINUTE * max_minutes
    chunks: list[Window] = []
    start: datetime | None = None
    end: datetime | None = None
    previous_end: datetime | None = None
    for wanted in sorted(ranges, key=lambda w: w.start):
        if previous_end is not None and wanted.start < previous_end:
            raise ValueError(f"range {wanted} overlaps the previous one (ends {format_ts(previous_end)})")
        previous_end = wanted.end
        for piece in wanted.chunks(max_minutes):
            if start is not None and piece.end - start <= limit:
                end = piece.end
                continue
            if start is not None and end is not None:
                chunks.append(Window(start, end))
            start, end = piece.start, piece.end
    if start is not None and end is not None:
        chunks.append(Window(start, end))
    return chunks


def horizon_start(exchanges: Sequence[str], now: datetime) -> datetime | None:
    """The oldest minute every one of ``exchanges`` still serves (``None``: no such limit).

    Args:
        exchanges: Exchange names.
        now: The current time.

    Returns:
        The oldest minute start servable by all of them, or ``None`` when none has a horizon.
    """
    limits = _horizons(exchanges)
    if not limits:
        return None
    return floor_minute(now) - MINUTE * (min(limits) - 1)


def check_backfill_window(window: Window, exchanges: Sequence[str], now: datetime) -> None:
    """Refuse a range no configured exchange could serve, or that is not over yet.

    Args:
        window: The range to backfill.
        exchanges: The exchanges that will be asked, in failover order.
        now: The current time.

    Raises:
        RangeError: The range ends after the last closed minute (``to``), is longer than
            :data:`MAX_BACKFILL_DAYS` (``range``), or every exchange has a horizon (Kraken: 720
            minutes) that the range's start is beyond (``from``).
        ValueError: No exchange is given.
    """
    if not exchanges:
        raise ValueError("no exchange to fetch from")
    # a backfill covers closed minutes only, at most MAX_BACKFILL_DAYS at once
    checked_range(window.start, window.end, latest=floor_minute(now), longest=timedelta(days=MAX_BACKFILL_DAYS))
    if all(limits_of(x).horizon_minutes is not None for x in exchanges):
        oldest = horizon_start(exchanges, now)
        if oldest is not None and window.start < oldest:
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


@dataclass(frozen=True)
class BackfillPlan:
    """What a backfill run will do: its range, the chunks and how many requests they take."""

    window: Window
    exchanges: tuple[str, ...]
    chunk_minutes: int
    chunks: list[Window]
    only_missing: bool

    @property
    def requests(self) -> int:
        """Candle requests to the first exchange if it serves every chunk."""
        return sum(request_count(chunk, self.exchanges[0]) for chunk in self.chunks)

    @property
    def minutes(self) -> int:
        return sum(chunk.minute_count for chunk in self.chunks)


def plan_backfill(window: Window, exchanges: Sequence[str], *, gaps: Sequence[Window] | None = None) -> BackfillPlan:
    """Plan the chunks of a backfill of ``window`` (or only of its ``gaps``).

    Args:
        window: The range asked for.
        exchanges: Exchanges in failover order; the first one's page size sets the chunk size.
        gaps: When given, only these ranges inside ``window`` are planned (``--missing``, heal).

    Returns:
        The plan.

    Raises:
        ValueError: No exchange, or a gap outside ``window``.
    """
    if not exchanges:
        raise ValueError("no exchange to fetch from")
    size = chunk_minutes(exchanges[0])
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
    )


def heal_window(run_after: datetime, horizon_minutes: int, exchanges: Sequence[str]) -> tuple[Window | None, int]:
    """The range an hourly heal run looks at: the last ``horizon_minutes``, within every exchange's horizon.

    The most recent :data:`HEAL_LAG` minutes are left to the live ingest (a run may still be
    retrying them). With Kraken among the exchanges the horizon is capped so that the oldest
    minute is still inside its 720 minutes when the chunks run (:data:`HORIZON_MARGIN` of slack).

    Args:
        run_after: When the heal run was due (its time, so a retry looks at the same range).
        horizon_minutes: The configured horizon (``BTC_HEAL_HORIZON_MINUTES``).
        exchanges: Exchanges in failover order.

    Returns:
        The range (``None`` when the cap leaves nothing) and the horizon used, in minutes.
    """
    end = floor_minute(run_after) - HEAL_LAG
    horizon = capped_horizon(horizon_minutes, exchanges, lag=HEAL_LAG)
    if horizon < 1:
        return None, 0
    return Window(end - MINUTE * horizon, end), horizon


def capped_horizon(horizon_minutes: int, exchanges: Sequence[str], *, lag: timedelta) -> int:
    """``horizon_minutes``, capped so that a range ending ``lag`` ago is still inside every
    exchange's horizon when its chunks run (:data:`HORIZON_MARGIN` of slack); may be < 1."""
    limits = _horizons(exchanges)
    if not limits:
        return horizon_minutes
    cap = int((MINUTE * (min(limits) - 1) - lag - HORIZON_MARGIN) / MINUTE)
    if horizon_minutes > cap:
        log.warning(
            "heal horizon %d min is beyond what %s serve; using %d min",
            horizon_minutes,
            ", ".join(x for x in exchanges if limits_of(x).horizon_minutes is not None),
            cap,
        )
        return cap
    return horizon_minutes


def first_candle_since(store: Store, window: Window, symbol: str) -> datetime | None:
    """Where healing ``window`` may start: its start if the pipeline stored candles before it, else
    the oldest candle inside it (``None``: no candle at all up to the window's end).

    A heal fills holes in the series the pipeline has been recording; it does not import history
    from before the first candle ever stored (that is ``btc-pipeline backfill``'s job).

    Args:
        store: The ``btc`` database.
        window: The heal range.
        symbol: The pipeline's symbol.

    Returns:
        The first minute to heal, or ``None``.
    """
    first = store.first_candle()
    if first is None or first >= window.end:
        return None
    return max(first, window.start)


@dataclass
class ChunkResult:
    """What one chunk did; small enough for XCom."""

    start: str
    end: str
    source: str
    fetched: int
    produced: int
    already_present: int
    no_trade_minutes: int
    requests: int
    failed_exchanges: dict[str, str] = field(default_factory=dict)
    fetch_ms: float = 0.0
    produce_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backfill_chunk(
    window: Window,
    settings: Settings,
    exchanges: Sequence[Exchange],
    producer: Producer,
    store: Store,
    run_id: str,
    *,
    only_missing: bool = False,
    present_source: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ChunkResult:
    """Fetch one chunk from the first exchange that serves it and produce its candles to Kafka.

    Args:
        window: The chunk.
        settings: Pipeline settings (topic, symbol).
        exchanges: Exchange clients in failover order (one, for ``--source``).
        producer: An idempotent producer.
        store: The ``btc`` database (no-trade minutes; the present minutes when ``only_missing``).
        run_id: The Airflow run id, carried in every message.
        only_missing: Produce only the minutes with no candle in ``btc.prices`` yet.
        present_source: With ``only_missing``: a minute counts as present only with a candle of
            this exchange (any exchange when ``None``).
        clock: Current time.

    Returns:
        Counts and timings of the chunk.

    Raises:
        CandlesNotReadyError: Minutes younger than the settle delay are missing (after producing
            the rest): Airflow retries the chunk.
        AllExchangesFailedError: No exchange could serve the chunk.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = clock()
    served_by, candles, failed = fetch_window(window, exchanges, now=now)
    fetched_at = clock()
    fetch_ms = (time.monotonic() - started) * 1000
    no_trades, not_yet = settled_missing(window, candles, now)
    wanted = candles
    already = 0
    if only_missing:
        present = store.present_minutes(window, settings.symbol, present_source)
        wanted = [c for c in candles if c.ts not in present]
        already = len(candles) - len(wanted)
    observations = candle_observations(served_by.name, settings.symbol, wanted, fetched_at, run_id)
    records = (Record(*obs.encode(max_skew_s=settings.max_clock_skew_s)) for obs in observations)
    produced = produce_all(producer, settings.topic, records)
    recorded = store.record_no_trade_minutes(served_by.name, settings.symbol, no_trades, run_id, reported_at=now)
    log.info(
        "chunk %s: %d candle(s) from %s, %d produced to %s, %d already present, %d minute(s) without trades "
        "(%d newly recorded)",
        window,
        len(candles),
        served_by.name,
        produced,
        settings.topic,
        already,
        len(no_trades),
        recorded,
    )
    if not_yet:
        raise CandlesNotReadyError(
            f"{served_by.name} has not published {len(not_yet)} minute(s) of {window} yet "
            f"(from {format_ts(not_yet[0])}); retry later"
        )
    return ChunkResult(
        start=format_ts(window.start),
        end=format_ts(window.end),
        source=served_by.name,
        fetched=len(candles),
        produced=produced,
        already_present=already,
        no_trade_minutes=len(no_trades),
        requests=request_count(window, served_by.name),
        failed_exchanges=failed,
        fetch_ms=round(fetch_ms, 1),
        produce_ms=round((time.monotonic() - started) * 1000 - fetch_ms, 1),
    )


@dataclass
class RecoveryHeal:
    """What a live ingest run healed after failed or skipped windows (part of its run record)."""

    start: str
    end: str
    missing_minutes: int = 0
    chunks: int = 0
    produced: int = 0
    no_trade_minutes: int = 0
    requests: int = 0
    #: Why some holes are left (to the next run, or the hourly heal), if any are.
    left: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heal_recovery(
    window: Window,
    last_success_end: datetime | None,
    settings: Settings,
    exchanges: Sequence[Exchange],
    producer: Producer,
    store: Store,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RecoveryHeal | None:
    """After failed or skipped windows, backfill their holes at once (not at the next hourly heal).

    The windows between the end of the last successful run and this ``window`` (at most
    ``BTC_HEAL_HORIZON_MINUTES``, within the exchanges' horizons) are looked up in the read model;
    the minutes without a candle and not known to be trade-less are fetched and produced like a
    backfill with ``only_missing``. A chunk that fails is left, with its reason, to the next run
    and to ``btc_heal``: healing never fails the live run.

    Args:
        window: This run's window (just produced).
        last_success_end: The end of the last successful run's window (Airflow's
            ``prev_data_interval_end_success``); ``None`` (no run ever succeeded) heals nothing.
        settings: Pipeline settings.
        exchanges: Exchange clients in failover order.
        producer: An idempotent producer.
        store: The ``btc`` database.
        run_id: The run id carried in the messages.
        clock: Current time.

    Returns:
        What was healed, or ``None`` when the previous window succeeded (nothing to look at), or
        ``window`` is not live (a backfill or re-run of an old window fills what it was asked to).
    """
    if last_success_end is None or last_success_end >= window.start:
        return None
    if clock() - window.end > timedelta(seconds=settings.live_tick_horizon_s):
        return None
    horizon = capped_horizon(settings.heal_horizon_minutes, [x.name for x in exchanges], lag=timedelta(0))
    if horizon < 1:
        return None
    scope = Window(max(floor_minute(last_success_end), window.start - MINUTE * horizon), window.start)
    report = find_gaps(store, scope, settings.symbol)
    heal = RecoveryHeal(start=format_ts(scope.start), end=format_ts(scope.end), missing_minutes=report.missing_minutes)
    if not report.missing:
        return heal
    chunks = plan_chunks([gap.window for gap in report.missing], chunk_minutes(exchanges[0].name))
    log.info("recovering: %d minute(s) missing in %s, in %d chunk(s)", report.missing_minutes, scope, len(chunks))
    for chunk in chunks:
        try:
            done = backfill_chunk(chunk, settings, exchanges, producer, store, run_id, only_missing=True, clock=clock)
        except CandlesNotReadyError as exc:  # its other minutes were produced; the next run looks again
            heal.left.append(str(exc))
            continue
        except (AllExchangesFailedError, DeliveryError) as exc:
            heal.left.append(f"{chunk}: {exc}")
            log.error("could not heal %s now (the next run and btc_heal try again): %s", chunk, exc)
            continue
        heal.chunks += 1
        heal.produced += done.produced
        heal.no_trade_minutes += done.no_trade_minutes
        heal.requests += done.requests
    return heal
