"""Records the pipeline keeps about itself: rejected messages, run statistics, and the minutes an
exchange said it had no trades in. All written insert-first (see :mod:`btc_pipeline.store.inserts`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from btc_pipeline.store.inserts import insert_new, insert_or_replace
from btc_pipeline.timeutil import format_ts


def record_rejects(rejects: Collection[Any], docs: Iterable[Mapping[str, Any]]) -> int:
    """Store rejected messages, keyed by ``topic|partition|offset`` so that a re-read stores them once.

    Returns:
        How many were new.
    """
    inserted, _ = insert_new(rejects, list(docs))
    return inserted


def run_document(
    dag_id: str, run_id: str, started_at: datetime, finished_at: datetime, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``btc.pipeline_runs`` document of one run: ``_id`` = ``dag_id|run_id``, its times, its fields."""
    return {
        "_id": f"{dag_id}|{run_id}",
        "dag_id": dag_id,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        **fields,
    }


def record_run(runs: Collection[Any], run: Mapping[str, Any]) -> None:
    """Store the statistics document of one pipeline run (a task retry replaces its earlier one)."""
    insert_or_replace(runs, run)


def no_trade_documents(
    source: str, symbol: str, minutes: Sequence[datetime], run_id: str, reported_at: datetime
) -> list[dict[str, Any]]:
    """The ``btc.no_trade_minutes`` documents of minutes ``source`` had no trades in."""
    return [
        {
            "_id": f"{source}|{symbol}|{format_ts(minute)}",
            "source": source,
            "symbol": symbol,
            "ts": minute,
            "reported_at": reported_at,
            "run_id": run_id,
        }
        for minute in minutes
    ]


def record_no_trade_minutes(
    no_trade: Collection[Any],
    source: str,
    symbol: str,
    minutes: Sequence[datetime],
    run_id: str,
    reported_at: datetime,
) -> int:
    """Store the minutes ``source`` answered without a candle for, once each (a re-run keeps the first report).

    Args:
        no_trade: The ``btc.no_trade_minutes`` collection.
        source: The exchange that answered.
        symbol: The pipeline's symbol.
        minutes: Minute starts without a candle (after the settle delay).
        run_id: The Airflow run that fetched them.
        reported_at: When the exchange answered.

    Returns:
        The number of minutes newly recorded.
    """
    inserted, _ = insert_new(no_trade, no_trade_documents(source, symbol, minutes, run_id, reported_at))
    return inserted
