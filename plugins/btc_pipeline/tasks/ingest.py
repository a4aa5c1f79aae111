"""Task bodies of ``btc_ingest``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from btc_pipeline.config import load_settings
from btc_pipeline.exchanges import build_exchange
from btc_pipeline.steps.ingest import ingest_window
from btc_pipeline.tasks import hooks
from btc_pipeline.timeutil import parse_iso


def produce_window(
    data_interval_start: datetime | None, data_interval_end: datetime | None, run_id: str
) -> dict[str, Any]:
    """``btc_ingest.produce_window``: fetch the window and produce it to Kafka.

    Returns:
        The run's result (:class:`~btc_pipeline.steps.ingest.IngestResult` as a dict); its
        ``empty_minutes`` are the minutes the exchange had no trades in.
    """
    settings = load_settings()
    window = hooks.window_of(data_interval_start, data_interval_end)
    exchanges = [build_exchange(name, settings) for name in settings.exchanges]
    with hooks.no_retry_when_permanent():
        return ingest_window(window, settings, exchanges, hooks.producer(settings), run_id).to_dict()


def record_ingest_run(result: dict[str, Any], dag_id: str, run_id: str, started_at: datetime | None) -> None:
    """``btc_ingest.record_run``: store the run's statistics and the minutes without trades it met."""
    settings = load_settings()
    with hooks.store(settings) as store:
        now = datetime.now(UTC)
        store.record_run(
            dag_id, run_id, started_at=started_at or now, finished_at=now, fields={**result, "state": "success"}
        )
        empty = [parse_iso(ts, "empty_minutes") for ts in result.get("empty_minutes", [])]
        store.record_no_trade_minutes(result["source"], settings.symbol, empty, run_id, reported_at=datetime.now(UTC))
