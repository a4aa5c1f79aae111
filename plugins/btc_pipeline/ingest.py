"""Ingest one window: fetch the closed 1-minute candles of ``[start, end)`` (and, for a live run,
the latest ticker) from the first provider that can serve it, and produce schema-v1 messages.

Candles depend only on the window, so re-running or backfilling a window produces the same keys
and prices. The ticker is a "now" observation: it is fetched only when the window is recent
(within ``BTC_LIVE_TICK_HORIZON_S``), never for backfills of old windows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from btc_pipeline.config import Settings
from btc_pipeline.kafka_io import Record, produce_all
from btc_pipeline.providers import Candle, ExchangeError, Provider, Tick
from btc_pipeline.schema import Observation
from btc_pipeline.window import Window

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
    fetch_ms: float = 0.0
    produce_ms: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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

    Args:
        window: The data interval ``[start, end)``.
        settings: Pipeline settings.
        providers: Exchange clients in failover order.
        producer: An idempotent producer (see :func:`btc_pipeline.kafka_io.producer_config`).
        run_id: The Airflow run id, carried in every message.
        clock: Current time (tests pass a fixed one).

    Returns:
        Counts and timings of the run.

    Raises:
        CandlesNotReadyError, AllProvidersFailedError: See :func:`fetch_window`.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = clock()
    provider, candles, failed = fetch_window(window, providers, now=now)
    fetched_at = clock()
    observations = candle_observations(provider.name, settings.symbol, candles, fetched_at, run_id)
    ticks = 0
    if now - window.end <= timedelta(seconds=settings.live_tick_horizon_s):
        try:
            observations.append(
                tick_observation(provider.name, settings.symbol, provider.fetch_ticker(), clock(), run_id)
            )
            ticks = 1
        except ExchangeError as exc:
            # Candles are the primary data: deliver them, and make the missing tick visible.
            failed[f"{provider.name}:ticker"] = str(exc)
            log.error("ticker of %s failed, producing candles only: %s", provider.name, exc)
    fetch_ms = (time.monotonic() - started) * 1000
    produced = produce_all(producer, settings.topic, (Record(*obs.encode()) for obs in observations))
    log.info(
        "window %s: %d candle(s) + %d tick(s) from %s produced to %s",
        window,
        len(candles),
        ticks,
        provider.name,
        settings.topic,
    )
    return IngestResult(
        window_start=window.start.isoformat(),
        window_end=window.end.isoformat(),
        source=provider.name,
        candles=len(candles),
        ticks=ticks,
        produced=produced,
        failed_providers=failed,
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
