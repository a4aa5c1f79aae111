"""Ingest one window: fetch the closed 1-minute candles of ``[start, end)`` from the first provider
that can serve it, and (for a live run) the ticker of every provider, and produce schema-v1 messages.

Candles depend only on the window, so re-running or backfilling a window produces the same keys
and prices. Tickers are "now" observations: they are read only when the window is recent (within
``BTC_LIVE_TICK_HORIZON_S``), never for backfills of old windows. Each provider's ticker becomes a
``tick`` of its own ``source``, and the tickers are cross-checked: one that deviates from the median
of the others by more than ``BTC_MAX_DEVIATION_PCT`` is flagged (a warning and the run's
``flagged``), not dropped, since the pipeline records what each exchange said. A ticker that cannot
be read is listed in ``failed_providers`` (as ``<name>:ticker``) and does not fail the run.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from btc_pipeline.config import Settings
from btc_pipeline.kafka_io import Record, produce_all
from btc_pipeline.providers import Candle, ExchangeError, Provider, Tick
from btc_pipeline.schema import Observation, format_ts
from btc_pipeline.window import MINUTE, Window

log = logging.getLogger(__name__)

#: How long after a window's end an exchange may still be publishing its candles. An empty answer
#: inside this delay is "not yet", which fails the task so that Airflow retries it; after it,
#: an empty answer means the exchange had no trades in those minutes.
CANDLE_SETTLE_DELAY = timedelta(seconds=90)


class CandlesNotReadyError(RuntimeError):
    """The exchange has not published the window's candles yet; retry later."""


class AllProvidersFailedError(RuntimeError):
    """No configured exchange could serve the window; the message lists each one's reason."""


@dataclass
class IngestResult:
    """What an ingest run did; small enough for XCom and stored in ``pipeline_runs``."""

    window_start: str
    window_end: str
    source: str
    candles: int
    ticks: int
    produced: int
    failed_providers: dict[str, str] = field(default_factory=dict)
    tick_prices: dict[str, float] = field(default_factory=dict)
    spread_pct: float | None = None
    flagged: dict[str, float] = field(default_factory=dict)
    empty_minutes: list[str] = field(default_factory=list)
    fetch_ms: float = 0.0
    produce_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def settled_missing(window: Window, candles: Sequence[Candle], now: datetime) -> tuple[list[datetime], list[datetime]]:
    """The minutes of ``window`` the exchange returned no candle for, split by the settle delay.

    Args:
        window: The range fetched.
        candles: What the exchange returned for it.
        now: When it was fetched.

    Returns:
        ``(no_trades, not_yet)``: missing minutes that closed at least the settle delay before
        ``now`` (the exchange had no trades in them), and younger ones (maybe not published yet).
    """
    have = {c.ts for c in candles}
    no_trades: list[datetime] = []
    not_yet: list[datetime] = []
    for minute in window.minutes():
        if minute in have:
            continue
        (no_trades if now - (minute + MINUTE) >= CANDLE_SETTLE_DELAY else not_yet).append(minute)
    return no_trades, not_yet


def candle_observations(
    source: str, symbol: str, candles: Sequence[Candle], fetched_at: datetime, run_id: str
) -> list[Observation]:
    """Schema-v1 observations of closed candles (``price`` = close)."""
    return [
        Observation(
            source=source,
            symbol=symbol,
            kind="candle_1m",
            ts=c.ts,
            price=c.close,
            open=c.open,
            high=c.high,
            low=c.low,
            close=c.close,
            volume=c.volume,
            fetched_at=fetched_at,
            run_id=run_id,
        )
        for c in candles
    ]


def tick_observation(source: str, symbol: str, tick: Tick, fetched_at: datetime, run_id: str) -> Observation:
    """The schema-v1 observation of a ticker read, at the exchange's time of the trade."""
    return Observation(
        source=source,
        symbol=symbol,
        kind="tick",
        ts=tick.ts,
        price=tick.price,
        volume=tick.volume,
        fetched_at=fetched_at,
        run_id=run_id,
    )


@dataclass(frozen=True)
class PriceCheck:
    """The cross-exchange check of one set of ticker prices (percentages rounded to 4 decimals)."""

    spread_pct: float | None
    deviations: dict[str, float]
    flagged: dict[str, float]


def cross_check(prices: Mapping[str, float], max_deviation_pct: float) -> PriceCheck:
    """Compare each exchange's price with the median of the *other* exchanges' prices.

    Comparing with the others (not with a median that includes the price itself) keeps one bad
    price from pulling its own reference. With two exchanges, a gap above the limit flags both:
    there is no majority to tell which one is off. With fewer than two there is nothing to compare.

    Args:
        prices: Ticker price per exchange name.
        max_deviation_pct: Largest accepted deviation, in percent of the reference median.

    Returns:
        The spread ``(max - min) / median`` in percent (``None`` with fewer than two prices), each
        exchange's deviation in percent, and the deviations above ``max_deviation_pct``.

    Raises:
        ValueError: A price is not a positive finite number, or ``max_deviation_pct`` is not positive.
    """
    if not (math.isfinite(max_deviation_pct) and max_deviation_pct > 0):
        raise ValueError(f"max_deviation_pct={max_deviation_pct!r} must be a positive number")
    for source, price in prices.items():
        if isinstance(price, bool) or not (math.isfinite(price) and price > 0):
            raise ValueError(f"ticker price of {source} is {price!r}; expected a positive finite number")
    if len(prices) < 2:
        return PriceCheck(spread_pct=None, deviations={}, flagged={})
    values = list(prices.values())
    spread = (max(values) - min(values)) / statistics.median(values) * 100
    deviations: dict[str, float] = {}
    for source, price in prices.items():
        reference = statistics.median(p for s, p in prices.items() if s != source)
        deviations[source] = round(abs(price - reference) / reference * 100, 4)
    flagged = {source: dev for source, dev in deviations.items() if dev > max_deviation_pct}
    return PriceCheck(spread_pct=round(spread, 4), deviations=deviations, flagged=flagged)


def fetch_tickers(providers: Sequence[Provider]) -> tuple[dict[str, Tick], dict[str, str]]:
    """Read every provider's ticker at the same time (one thread each).

    Args:
        providers: The exchange clients.

    Returns:
        The ticks of the providers that answered, and the reasons of those that failed, both by
        provider name in the order of ``providers``.
    """
    if not providers:
        return {}, {}
    with ThreadPoolExecutor(max_workers=len(providers), thread_name_prefix="ticker") as pool:
        futures = [(p.name, pool.submit(p.fetch_ticker)) for p in providers]
        ticks: dict[str, Tick] = {}
        errors: dict[str, str] = {}
        for name, future in futures:
            try:
                ticks[name] = future.result()
            except ExchangeError as exc:
                errors[name] = str(exc)
    return ticks, errors


def fetch_window(
    window: Window,
    providers: Sequence[Provider],
    *,
    now: datetime,
) -> tuple[Provider, list[Candle], dict[str, str]]:
    """Fetch the window's candles from the first provider that serves it (failover in order).

    Returns:
        The provider that served, its candles, and the reasons of the providers that failed before it.

    Raises:
        CandlesNotReadyError: The window closed too recently and no provider has its candles yet.
        AllProvidersFailedError: Every provider failed; the message lists each one's reason.
    """
    reasons: dict[str, str] = {}
    not_ready: list[str] = []
    for provider in providers:
        try:
            candles = provider.fetch_candles(window)
        except ExchangeError as exc:
            log.warning("provider %s failed for %s: %s", provider.name, window, exc)
            reasons[provider.name] = str(exc)
            continue
        if not candles and now - window.end < CANDLE_SETTLE_DELAY:
            not_ready.append(provider.name)
            reasons[provider.name] = "no candles yet (window closed less than 90 s ago)"
            continue
        return provider, candles, reasons
    if not_ready:
        raise CandlesNotReadyError(f"candles for {window} not published yet by {', '.join(not_ready)}; retry later")
    listing = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
    raise AllProvidersFailedError(f"no provider could serve {window}: {listing}")


def ingest_window(
    window: Window,
    settings: Settings,
    providers: Sequence[Provider],
    producer: Producer,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> IngestResult:
    """Fetch the window and produce its observations to ``settings.topic``, confirmed by the broker.

    Candles come from the first provider that serves the window; for a live window, every
    provider's ticker is read too, produced as a tick of its own source and cross-checked.

    Args:
        window: The data interval ``[start, end)``.
        settings: Pipeline settings.
        providers: Exchange clients in failover order (all of them are asked for their ticker).
        producer: An idempotent producer (see :func:`btc_pipeline.kafka_io.producer_config`).
        run_id: The Airflow run id, carried in every message.
        clock: Current time (tests pass a fixed one).

    Returns:
        Counts and timings of the run, the tick price per exchange, their spread and the
        exchanges flagged by the cross-exchange check, and every failed provider's reason.

    Raises:
        CandlesNotReadyError, AllProvidersFailedError: See :func:`fetch_window`.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = clock()
    provider, candles, failed = fetch_window(window, providers, now=now)
    fetched_at = clock()
    observations = candle_observations(provider.name, settings.symbol, candles, fetched_at, run_id)
    tick_prices: dict[str, float] = {}
    check = PriceCheck(spread_pct=None, deviations={}, flagged={})
    if now - window.end <= timedelta(seconds=settings.live_tick_horizon_s):
        ticks, ticker_errors = fetch_tickers(providers)
        tick_fetched_at = clock()
        for name, reason in ticker_errors.items():
            # Candles are the primary data: deliver them, and make the missing tick visible.
            failed[f"{name}:ticker"] = reason
            log.error("ticker of %s failed, producing without it: %s", name, reason)
        for name, tick in ticks.items():
            observations.append(tick_observation(name, settings.symbol, tick, tick_fetched_at, run_id))
            tick_prices[name] = tick.price
        check = cross_check(tick_prices, settings.max_deviation_pct)
        for name, deviation in check.flagged.items():
            log.warning(
                "ticker of %s (%.2f) deviates %.4f%% from the median of the other exchanges, above "
                "BTC_MAX_DEVIATION_PCT=%s; prices: %s",
                name,
                tick_prices[name],
                deviation,
                settings.max_deviation_pct,
                tick_prices,
            )
    fetch_ms = (time.monotonic() - started) * 1000
    produced = produce_all(producer, settings.topic, (Record(*obs.encode()) for obs in observations))
    log.info(
        "window %s: %d candle(s) from %s + %d tick(s) (spread %s%%) produced to %s",
        window,
        len(candles),
        provider.name,
        len(tick_prices),
        check.spread_pct,
        settings.topic,
    )
    return IngestResult(
        window_start=window.start.isoformat(),
        window_end=window.end.isoformat(),
        source=provider.name,
        candles=len(candles),
        ticks=len(tick_prices),
        produced=produced,
        failed_providers=failed,
        tick_prices=tick_prices,
        spread_pct=check.spread_pct,
        flagged=check.flagged,
        # settled minutes the serving exchange had no candle for: it had no trades in them
        empty_minutes=[format_ts(minute) for minute in settled_missing(window, candles, clock())[0]],
        fetch_ms=round(fetch_ms, 1),
        produce_ms=round((time.monotonic() - started) * 1000 - fetch_ms, 1),
    )


def run_document(
    dag_id: str, run_id: str, result: Mapping[str, object], started_at: datetime, finished_at: datetime
) -> dict[str, object]:
    """The ``pipeline_runs`` document of an ingest run."""
    return {
        "_id": f"{dag_id}|{run_id}",
        "dag_id": dag_id,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        **result,
    }
