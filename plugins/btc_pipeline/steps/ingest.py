"""Ingest one window: fetch the closed 1-minute candles of ``[start, end)`` from the first exchange
that can serve it, and (for a live run) the ticker of every exchange, and produce schema-v1 messages.

Candles depend only on the window, so re-running or backfilling a window produces the same keys
and prices. Tickers are "now" observations: they are read only when the window is recent (within
``BTC_LIVE_TICK_HORIZON_S``), never for backfills of old windows; one round with the candles here,
the rest of the minute by :func:`btc_pipeline.steps.ticks.stream_ticks` (reading, cross-check and
keys are described there). A ticker that cannot be read is listed in ``failed_exchanges`` (as
``<name>:ticker``) and does not fail the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from btc_pipeline.config import Settings
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.exchanges import Candle, Exchange, ExchangeError
from btc_pipeline.schema import Observation
from btc_pipeline.steps.ticks import read_tickers
from btc_pipeline.stream import Record, produce_all
from btc_pipeline.timeutil import format_ts, utcnow
from btc_pipeline.window import MINUTE, Window

if TYPE_CHECKING:
    from confluent_kafka import Producer

log = logging.getLogger(__name__)

#: How long after a window's end an exchange may still be publishing its candles. An empty answer
#: inside this delay is "not yet", which fails the task so that Airflow retries it; after it,
#: an empty answer means the exchange had no trades in those minutes.
CANDLE_SETTLE_DELAY = timedelta(seconds=90)


class CandlesNotReadyError(BtcPipelineError, RuntimeError):
    """The exchange has not published the window's candles yet; retry later."""


class AllExchangesFailedError(BtcPipelineError, RuntimeError):
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


def candle_records(
    source: str, candles: Iterable[Candle], settings: Settings, fetched_at: datetime, run_id: str
) -> Iterator[Record]:
    """The schema-v1 messages of closed candles (``price`` = close), encoded and validated."""
    for c in candles:
        obs = Observation(
            source=source,
            symbol=settings.symbol,
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
        yield Record(*obs.encode(max_skew_s=settings.max_clock_skew_s))


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

    Returns:
        Counts and timings of the run, the tick price per exchange, their spread and the
        exchanges flagged by the cross-exchange check, and every failed exchange's reason.

    Raises:
        CandlesNotReadyError, AllExchangesFailedError: See :func:`fetch_window`.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = utcnow()
    served_by, candles, failed = fetch_window(window, exchanges, now=now)
    fetched_at = utcnow()
    fetch_ms = (time.monotonic() - started) * 1000
    # the window's candles first: the tickers must not delay them
    records = candle_records(served_by.name, candles, settings, fetched_at, run_id)
    produced = produce_all(producer, settings.topic, records, timeout_s=settings.ingest_delivery_timeout_s)
    tick_prices: dict[str, float] = {}
    spread_pct: float | None = None
    flagged: dict[str, float] = {}
    if now - window.end <= timedelta(seconds=settings.live_tick_horizon_s):
        # a ticker that fails is listed in the run, not fatal: the candles are the primary data
        reading = read_tickers(exchanges, settings, run_id)
        produced += produce_all(producer, settings.topic, reading.records, timeout_s=settings.ingest_delivery_timeout_s)
        failed.update(reading.failed)
        tick_prices, spread_pct, flagged = reading.prices, reading.check.spread_pct, reading.check.flagged
    log.info(
        "window %s: %d candle(s) from %s + %d tick(s) (spread %s%%) produced to %s",
        window,
        len(candles),
        served_by.name,
        len(tick_prices),
        spread_pct,
        settings.topic,
    )
    return IngestResult(
        window_start=format_ts(window.start),
        window_end=format_ts(window.end),
        source=served_by.name,
        candles=len(candles),
        ticks=len(tick_prices),
        produced=produced,
        failed_exchanges=failed,
        tick_prices=tick_prices,
        spread_pct=spread_pct,
        flagged=flagged,
        # settled minutes the serving exchange had no candle for: it had no trades in them
        empty_minutes=[format_ts(minute) for minute in settled_missing(window, candles, utcnow())[0]],
        fetch_ms=round(fetch_ms, 1),
        produce_ms=round((time.monotonic() - started) * 1000 - fetch_ms, 1),  # with the tickers' round
    )
