"""Live tickers: read every exchange's ticker, cross-check the prices, produce each reading as a
``tick`` of its own ``source``; and, through a live ingest run's minute, do so every
``BTC_TICK_INTERVAL_S`` (:func:`stream_ticks`), so that the newest price is seconds old.

A tick is keyed ``source|symbol|tick|ts`` with ``ts`` the exchange's time of its last trade: reading
a ticker again before the next trade gives the same key, so re-reads and re-runs never duplicate.

The cross-check compares each exchange's price with the median of the *others*: one that deviates by
more than ``BTC_MAX_DEVIATION_PCT`` is flagged (a warning and the run's ``flagged``), not dropped,
since the pipeline records what each exchange said. A ticker that cannot be read is listed in
``failed_exchanges`` (as ``<name>:ticker``) and fails nothing.
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
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.exchanges import Exchange, ExchangeError, Tick
from btc_pipeline.schema import Observation, SchemaError
from btc_pipeline.stream import DeliveryError, Record, produce_all
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window

if TYPE_CHECKING:
    from confluent_kafka import Producer

log = logging.getLogger(__name__)


class TicksNotDeliveredError(BtcPipelineError, RuntimeError):
    """Some rounds of a tick stream were not acknowledged by the broker. Those readings are gone
    (a ticker says "now"; asking again later gives another reading), so this is not retried."""


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
        exchanges: The exchange clients (``BTC_EXCHANGES`` names at least one).

    Returns:
        The ticks of the exchanges that answered, and the reasons of those that failed, both by
        exchange name in the order of ``exchanges``.
    """
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


@dataclass(frozen=True)
class TickRound:
    """One reading of every exchange's ticker: the records to produce (encoded and validated once,
    when read), the price of each exchange read, and their cross-check."""

    records: list[Record]
    prices: dict[str, float]
    failed: dict[str, str]
    check: PriceCheck


def read_tickers(
    exchanges: Sequence[Exchange],
    settings: Settings,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> TickRound:
    """Read every exchange's ticker once, as observations, cross-checked (flagged ones are logged).

    Returns:
        The round; ``failed`` maps ``<name>:ticker`` to the reason an exchange could not be read.
    """
    ticks, errors = fetch_tickers(exchanges)
    fetched_at = clock()
    records: list[Record] = []
    prices: dict[str, float] = {}
    for name, tick in ticks.items():
        obs = tick_observation(name, settings.symbol, tick, fetched_at, run_id)
        try:  # the drain's rules: never produce what it would refuse
            records.append(Record(*obs.encode(now=fetched_at, max_skew_s=settings.max_clock_skew_s)))
        except SchemaError as exc:
            errors[name] = f"reading refused ({exc})"
            continue
        prices[name] = tick.price
    failed = {}
    for name, reason in errors.items():
        failed[f"{name}:ticker"] = reason
        log.error("ticker of %s failed, going on without it: %s", name, reason)
    check = cross_check(prices, settings.max_deviation_pct)
    for name, deviation in check.flagged.items():
        log.warning(
            "ticker of %s (%.2f) deviates %.4f%% from the median of the other exchanges, above "
            "BTC_MAX_DEVIATION_PCT=%s; prices: %s",
            name,
            prices[name],
            deviation,
            settings.max_deviation_pct,
            prices,
        )
    return TickRound(records, prices, failed, check)


@dataclass
class TickStreamResult:
    """What a run's tick stream did; part of the ingest run's record in ``pipeline_runs``."""

    rounds: int = 0
    produced: int = 0
    undelivered_rounds: int = 0
    #: Per ``<name>:ticker``, in how many rounds it could not be read.
    failed: dict[str, int] = field(default_factory=dict)
    #: Per exchange, its largest deviation among the rounds it was flagged in.
    flagged: dict[str, float] = field(default_factory=dict)
    max_spread_pct: float | None = None
    skipped: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def tick_times(window: Window, interval_s: int) -> list[datetime]:
    """When a run streams tickers: every ``interval_s`` after the window's end, within the minute
    that follows it (the next run's first reading comes with its candles, just after that minute).

    >>> from datetime import datetime, UTC
    >>> w = Window(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    >>> [t.second for t in tick_times(w, 10)]
    [10, 20, 30, 40, 50]
    """
    return [window.end + timedelta(seconds=s) for s in range(interval_s, 60, interval_s)]


def stream_ticks(
    window: Window,
    settings: Settings,
    exchanges: Sequence[Exchange],
    producer: Producer,
    run_id: str,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> TickStreamResult:
    """Through the minute after a live window, read every exchange's ticker every
    ``BTC_TICK_INTERVAL_S`` and produce each round at once.

    Rounds whose time has passed are skipped (a run that started late does not read twice in a
    row); a window that is not live (a backfill, a re-run of an old window) streams nothing.

    Returns:
        The rounds' counts.

    Raises:
        TicksNotDeliveredError: At the end, when the broker did not acknowledge some rounds (the
            rounds after them were still read and produced).
    """
    result = TickStreamResult()
    if clock() - window.end > timedelta(seconds=settings.live_tick_horizon_s):
        result.skipped = "not a live window"
        return result
    due = [at for at in tick_times(window, settings.tick_interval_s) if at > clock()]
    for at in due:
        wait = (at - clock()).total_seconds()
        if wait > 0:
            sleep(wait)
        reading = read_tickers(exchanges, settings, run_id, clock=clock)
        result.rounds += 1
        for name in reading.failed:
            result.failed[name] = result.failed.get(name, 0) + 1
        for name, deviation in reading.check.flagged.items():
            result.flagged[name] = max(deviation, result.flagged.get(name, 0.0))
        if reading.check.spread_pct is not None:
            result.max_spread_pct = max(reading.check.spread_pct, result.max_spread_pct or 0.0)
        try:
            # a round must not hold up the next one: wait for the broker at most an interval
            result.produced += produce_all(
                producer, settings.topic, reading.records, timeout_s=settings.tick_interval_s
            )
        except DeliveryError as exc:
            result.undelivered_rounds += 1
            log.error("tick round at %s not delivered: %s", format_ts(at), exc)
    log.info("tick stream of %s: %s", window, result.to_dict())
    if result.undelivered_rounds:
        raise TicksNotDeliveredError(
            f"{result.undelivered_rounds} of {result.rounds} tick round(s) of {window} were not acknowledged by "
            f"the broker; those readings are lost (the candles are not: they are fetched again)"
        )
    return result
