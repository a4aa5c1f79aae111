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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from btc_pipeline.config import Settings
from btc_pipeline.exchanges import Candle, Exchange
from btc_pipeline.exchanges.pace import Pacer
from btc_pipeline.steps.backfill_plan import Lane, request_count
from btc_pipeline.steps.ingest import CandlesNotReadyError, candle_records, fetch_window, settled_missing
from btc_pipeline.stream import produce_all
from btc_pipeline.timeutil import format_ts, utcnow
from btc_pipeline.window import Window

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from btc_pipeline.store import Store

log = logging.getLogger(__name__)

#: Pages of a history chunk fetched at the same time (the pacer keeps them within the rate).
HISTORY_FETCH_WORKERS = 4


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
    lane: Lane = "live",
) -> ChunkResult:
    """Fetch one chunk, each page from the first exchange that serves it, and produce its candles
    to Kafka (``BTC_TOPIC``, or ``BTC_HISTORY_TOPIC`` in the history lane).

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
        lane: ``history``: :data:`HISTORY_FETCH_WORKERS` pages at a time, to the history topic.

    Returns:
        Counts and timings of the chunk.

    Raises:
        CandlesNotReadyError: Minutes younger than the settle delay are missing (after producing
            the rest): Airflow retries the chunk.
        AllExchangesFailedError: No exchange could serve the chunk.
        DeliveryError: The broker did not acknowledge every message.
    """
    started = time.monotonic()
    now = utcnow()
    served = fetch_pages(window, exchanges, now=now, workers=HISTORY_FETCH_WORKERS if lane == "history" else 1)
    fetched_at = utcnow()
    fetch_ms = (time.monotonic() - started) * 1000
    candles = [c for page in served for c in page.candles]
    failed = {name: reason for page in served for name, reason in page.failed.items()}
    no_trades: list[datetime] = []
    not_yet: list[datetime] = []
    recorded = 0
    for page in served:  # each exchange speaks for the minutes of the pages it served
        quiet, young = settled_missing(page.window, page.candles, now)
        no_trades += quiet
        not_yet += young
        recorded += store.record_no_trade_minutes(page.source, settings.symbol, quiet, run_id, reported_at=now)
    present = store.present_minutes(window, present_source) if only_missing else set()
    topic = settings.history_topic if lane == "history" else settings.topic
    records = (
        record
        for page in served
        for record in candle_records(
            page.source, (c for c in page.candles if c.ts not in present), settings, fetched_at, run_id
        )
    )
    produced = produce_all(producer, topic, records)
    already = len(candles) - produced
    sources = sorted({page.source for page in served})
    log.info(
        "chunk %s: %d candle(s) from %s in %d page(s), %d produced to %s, %d already present, %d minute(s) "
        "without trades (%d newly recorded)",
        window,
        len(candles),
        ", ".join(sources),
        len(served),
        produced,
        topic,
        already,
        len(no_trades),
        recorded,
    )
    if not_yet:
        raise CandlesNotReadyError(
            f"{sources[0]} has not published {len(not_yet)} minute(s) of {window} yet "
            f"(from {format_ts(not_yet[0])}); retry later"
        )
    return ChunkResult(
        start=format_ts(window.start),
        end=format_ts(window.end),
        source=",".join(sources),
        fetched=len(candles),
        produced=produced,
        already_present=already,
        no_trade_minutes=len(no_trades),
        requests=sum(request_count(page.window, page.source) for page in served),
        failed_exchanges=failed,
        fetch_ms=round(fetch_ms, 1),
        produce_ms=round((time.monotonic() - started) * 1000 - fetch_ms, 1),
    )


@dataclass(frozen=True)
class ServedPage:
    """One page of a chunk as fetched: its window, the exchange that served it, its candles, and
    the reasons of the exchanges that failed before it."""

    window: Window
    source: str
    candles: list[Candle]
    failed: dict[str, str]


def fetch_pages(window: Window, exchanges: Sequence[Exchange], *, now: datetime, workers: int) -> list[ServedPage]:
    """Fetch a chunk page by page (each page from the first exchange that serves it), ``workers``
    pages at a time, paced with every other chunk task of this machine at the first exchange's
    backfill rate (:attr:`~btc_pipeline.exchanges.base.ExchangeLimits.requests_per_second`,
    :mod:`~btc_pipeline.exchanges.pace`).

    Args:
        window: The chunk.
        exchanges: Exchange clients in failover order.
        now: The current time (candles not settled yet, see :func:`fetch_window`).
        workers: Pages fetched at the same time.

    Returns:
        The pages, oldest first.

    Raises:
        CandlesNotReadyError, AllExchangesFailedError: A page could not be served (see
            :func:`fetch_window`); the chunk fails and is retried whole.
    """
    first = exchanges[0]
    pages = first.limits.pages(window)
    pacer = Pacer(first.name, first.limits.requests_per_second)

    def fetch(page: Window) -> ServedPage:
        pacer.wait()
        served_by, candles, failed = fetch_window(page, exchanges, now=now)
        return ServedPage(page, served_by.name, candles, failed)

    if workers <= 1 or len(pages) == 1:
        return [fetch(page) for page in pages]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(fetch, pages))
