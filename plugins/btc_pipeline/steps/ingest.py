"""Ingest one window: fetch the closed 1-minute candles of ``[start, end)`` from the first exchange
that can serve it, and (for a live run) the ticker of every exchange, and produce schema-v1 messages.

Candles depend only on the window, so re-running or backfilling a window produces the same keys
and prices. Tickers are "now" observations: they are read only when the window is recent (within
``BTC_LIVE_TICK_HORIZON_S``), never for backfills of old windows. Each exchange's ticker becomes a
``tick`` of its own ``source``, and the tickers are cross-checked: one that deviates from the median
of the others by more than ``BTC_MAX_DEVIATION_PCT`` is flagged (a warning and the run's
``flagged``), not dropped, since the pipeline records what each exchange said. A ticker that cannot
be read is listed in ``failed_exchanges`` (as ``<name>:ticker``) and does not fail the run.
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
from typing import TYPE_CHECKING

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import Candle, Exchange, ExchangeError, Tick
from btc_pipeline.schema import Observation
from btc_pipeline.stream import Record, produce_all
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import MINUTE, Window

if TYPE_CHECKING:
    from confluent_kafka import Producer

log = logging.getLogger(__name__)

#: How long after a window's end an exchange may still be publishing its candles. An empty answer
#: inside this delay is "not yet", which fails the task so that Airflow retries it; after it,
#: an empty answer means the exchange had no trades in those minutes.
CANDLE_SETTLE_DELAY = timedelta(seconds=90)


class CandlesNotReadyError(RuntimeError):
    """The exchange has not published the window's candles yet; retry later."""


class AllExchangesFailedError(RuntimeError):
    """No configured exchange could serve the window; the message lists each one's reason.

    ``permanent``: every exchange failed in a way that asking again soon will not fix (HTTP 451,
    an unknown pair, ...), so retrying the task is pointless.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class IngestResult:
    """What an ingest run did; small enough for XCom and stored in ``pipeline_runs``."""

    window_start: str
    window_end: str
    source: str
    candles: int
    ticks: int
    produced: int
    failed_exchanges: dict[str, str] = field(default_factory=dict)
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


def fetch_tickers(exchanges: Sequence[Exchange]) -> tuple[dict[str, Tick], dict[str, str]]:
    """Read every exchange's ticker at the same time (one thread each).

    Args:
        exchanges: The exchange clients.

    Returns:
        The ticks of the exchanges that answered, and the reasons of those that failed, both by
        exchange name in the order of ``exchanges``.
    """
    if not exchanges:
        return {}, {}
    with ThreadPoolExecutor(max_workers=len(exchanges), thread_name_prefix="ticker") as pool:
        futures = [(x.name, pool.submit(x.fetch_ticker)) for x in exchanges]
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
    exchanges: Sequence[Exchange],
    *,
    now: datetime,
) -> tuple[Exchange, list[Candle], dict[str, str]]:
    """Fetch the window's candles from the first exchange that serves it (failover in order).

    Returns:
        The exchange that served, its candles, and the reasons of the exchanges that failed before it.

    Raises:
        CandlesNotReadyError: The window closed too recently and no exchange has its candles yet.
        AllExchangesFailedError: Every exchange failed; the message lists each one's reason.
    """
    reasons: dict[str, str] = {}
    not_ready: list[str] = []
    permanent = True
    for exchange in exchanges:
        try:
            candles = exchange.fetch_candles(window)
        except ExchangeError as exc:
            log.warning("exchange %s failed for %s: %s", exchange.name, window, exc)
            reasons[exchange.name] = str(exc)
            permanent = permanent and exc.permanent
            continue
        if not candles and now - window.end < CANDLE_SETTLE_DELAY:
            not_ready.append(exchange.name)
            reasons[exchange.name] = "no candles yet (window closed less than 90 s ago)"
            continue
        return exchange, candles, reasons
    if not_ready:
        raise CandlesNotReadyError(f"candles for {window} not published yet by {', '.join(not_ready)}; retry later")
    listing = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
    raise AllExchangesFailedError(f"no exchange could serve {window}: {listing}", permanent=permanent)


def ingest_window(
    window: Window,
    settings: Settings,
    exchanges: Sequence[Exchange],
    producer: Producer,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> IngestResult:
    """Fetch the window and produce its observations to ``settings.topic``, confirmed by the broker.

    Candles come from the first exchange that serves the window; for a live window, every
    exchange's ticker is read too, produced as a tick of its own source and cross-checked.

    Args:
        window: The data interval ``[start, end)``.
        settings: Pipeline settings.
        exchanges: Exchange clients in failover order (all of them are asked for their ticker).
        producer: An idempotent producer (see :func:`btc_pipeline.stream.producer_config`).
        run_id: The Airflow run id, carried in every message.
        clock: Current time (tests pass a fixed one).

    Returns:
        Counts and timings of the run, the tick price per exchange, their spread and the
        exchanges flagged by the cross-exchange check, and every failed exchange's reason.

    Raises:
        CandlesNotReadyError, AllExchangesFailedError: See :func:`fetch_window`.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = clock()
    served_by, candles, failed = fetch_window(window, exchanges, now=now)
    fetched_at = clock()
    observations = candle_observations(served_by.name, settings.symbol, candles, fetched_at, run_id)
    tick_prices: dict[str, float] = {}
    check = PriceCheck(spread_pct=None, deviations={}, flagged={})
    if now - window.end <= timedelta(seconds=settings.live_tick_horizon_s):
        ticks, ticker_errors = fetch_tickers(exchanges)
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
        served_by.name,
        len(tick_prices),
        check.spread_pct,
        settings.topic,
    )
    return IngestResult(
        window_start=window.start.isoformat(),
        window_end=window.end.isoformat(),
        source=served_by.name,
        candles=len(candles),
        ticks=len(tick_prices),
        produced=produced,
        failed_exchanges=failed,
        tick_prices=tick_prices,
        spread_pct=check.spread_pct,
        flagged=check.flagged,
        # settled minutes the serving exchange had no candle for: it had no trades in them
        empty_minutes=[format_ts(minute) for minute in settled_missing(window, candles, clock())[0]],
        fetch_ms=round(fetch_ms, 1),
        produce_ms=round((time.monotonic() - started) * 1000 - fetch_ms, 1),
    )
