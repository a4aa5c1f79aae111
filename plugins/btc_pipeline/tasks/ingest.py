"""Task bodies of ``btc_ingest``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.heal import heal_recovery
from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.steps.ticks import TicksNotDeliveredError, stream_ticks
from btc_pipeline.tasks import hooks
from btc_pipeline.timeutil import format_ts, parse_iso, to_utc

log = logging.getLogger(__name__)


def produce_window(
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    run_id: str,
    last_success_end: datetime | None = None,
) -> dict[str, Any]:
    """``btc_ingest.produce_window``: fetch the window and produce it to Kafka; then, when the
    runs before it failed or were skipped, backfill their holes at once.

    Args:
        data_interval_start, data_interval_end: The run's window.
        run_id: The run.
        last_success_end: The end of the last successful run's window
            (``prev_data_interval_end_success``); ``None`` heals nothing.

    Returns:
        The run's result (:class:`~btc_pipeline.steps.ingest.IngestResult` as a dict); its
        ``empty_minutes`` are the minutes the exchange had no trades in; ``healed`` what the
        recovery heal did (absent when the previous window succeeded).
    """
    settings = load_settings()
    window = hooks.window_of(data_interval_start, data_interval_end)
    exchanges = [build_exchange(name, settings) for name in settings.exchanges]
    producer = hooks.producer(settings)
    with hooks.no_retry_when_permanent():
        result = ingest_window(window, settings, exchanges, producer, run_id).to_dict()
    since = to_utc(last_success_end) if last_success_end else None
    if since is not None and since < window.start:
        with hooks.store(settings) as store:  # after the window's own candles: they go first
            healed = heal_recovery(window, since, settings, exchanges, producer, store, run_id)
        if healed is not None:
            result["healed"] = healed.to_dict()
            log.info("recovery heal after the last success at %s: %s", format_ts(since), result["healed"])
    return result


def stream_window_ticks(
    data_interval_start: datetime | None, data_interval_end: datetime | None, run_id: str
) -> dict[str, Any]:
    """``btc_ingest.stream_ticks``: every exchange's ticker every ``BTC_TICK_INTERVAL_S`` through
    the minute after a live window, each round produced at once.

    Raises:
        AirflowFailException: Some rounds were not acknowledged by the broker (not retried: those
            readings cannot be had again).
    """
    settings = load_settings()
    window = hooks.window_of(data_interval_start, data_interval_end)
    exchanges = [build_exchange(name, settings) for name in settings.exchanges]
    try:
        return stream_ticks(window, settings, exchanges, hooks.producer(settings), run_id).to_dict()
    except TicksNotDeliveredError as exc:
        raise AirflowFailException(str(exc)) from exc


def record_ingest_run(
    result: dict[str, Any],
    dag_id: str,
    run_id: str,
    started_at: datetime | None,
    ticks: dict[str, Any] | None = None,
) -> None:
    """``btc_ingest.record_run``: store the run's statistics and the minutes without trades it met."""
    settings = load_settings()
    with hooks.store(settings) as store:
        now = datetime.now(UTC)
        fields = {**result, "state": "success"}
        if ticks is not None:
            fields["tick_stream"] = ticks
        store.record_run(dag_id, run_id, started_at=started_at or now, finished_at=now, fields=fields)
        empty = [parse_iso(ts, "empty_minutes") for ts in result.get("empty_minutes", [])]
        store.record_no_trade_minutes(result["source"], settings.symbol, empty, run_id, reported_at=datetime.now(UTC))
