"""Backfill execution: fetch one chunk of 1-minute candles from the exchanges' history and produce
them to ``btc-metrics`` with the idempotent producer, so backfilled candles reach MongoDB through
the drain exactly like live ones (same keys, same upsert). Chunks come from
:mod:`btc_pipeline.steps.backfill_plan`; the heals that call this are in :mod:`btc_pipeline.steps.heal`.

Minutes the exchange answered without a candle, once the settle delay has passed, are recorded in
``btc.no_trade_minutes`` (:mod:`btc_pipeline.steps.gaps`); a missing minute younger than the settle
delay fails the chunk with :class:`~btc_pipeline.steps.ingest.CandlesNotReadyError`, so Airflow retries it.

The Airflow task bodies that call these functions are in :mod:`btc_pipeline.tasks.backfill`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import Exchange
from btc_pipeline.steps.backfill_plan import request_count
from btc_pipeline.steps.ingest import CandlesNotReadyError, candle_observations, fetch_window, settled_missing
from btc_pipeline.stream import Record, produce_all
from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from btc_pipeline.store import Store

log = logging.getLogger(__name__)


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
        present = store.present_minutes(window, present_source)
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
