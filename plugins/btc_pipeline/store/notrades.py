"""Minutes an exchange said it had no trades in: the record, and month partitions for reads.

``btc.no_trade_minutes`` keeps every report (``_id`` = ``source|symbol|ts``). Gap checks read the
copies in ``no_trades.<YYYY-MM>``, one small collection per month, so that checking a day reads
that month's reports, not every report ever made.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from btc_pipeline.store.inserts import insert_by_month, insert_new
from btc_pipeline.store.layout import month_partitions
from btc_pipeline.timeutil import format_ts, to_utc
from btc_pipeline.window import Window

PARTITION_PREFIX = "no_trades"


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


def record_no_trade_minutes(db: Database[Any], record: Collection[Any], docs: Sequence[dict[str, Any]]) -> int:
    """Store no-trade reports once each (a re-run keeps the first), in the record and its partitions.

    Returns:
        The number of minutes newly recorded.
    """
    inserted, _ = insert_new(record, docs)
    insert_by_month(db, PARTITION_PREFIX, docs)
    return inserted


def reported_no_trades(
    db: Database[Any], window: Window, symbol: str, source: str | None = None
) -> dict[datetime, set[str]]:
    """Minutes of ``window`` that an exchange said it had no trades in, with the exchanges that said so.

    Args:
        db: The ``btc`` database.
        window: The range to look at.
        symbol: The pipeline's symbol.
        source: Only reports of this exchange; any exchange when ``None``.

    Returns:
        Minute start -> names of the exchanges that reported no trades in it.
    """
    reports: dict[datetime, set[str]] = {}
    for name in month_partitions(PARTITION_PREFIX, window.start, window.end):
        for doc in db[name].find({}, {"ts": 1, "source": 1, "symbol": 1, "_id": 0}):
            ts = to_utc(doc["ts"])
            if doc.get("symbol") != symbol or not window.contains(ts):
                continue
            if source is not None and doc.get("source") != source:
                continue
            reports.setdefault(ts, set()).add(str(doc["source"]))
    return reports


def copy_no_trade_minutes(record: Collection[Any], db: Database[Any], window: Window) -> int:
    """Copy the record's reports of ``window`` into their partitions (for a rebuild).

    Returns:
        How many reports the partitions did not have yet.
    """
    return insert_by_month(db, PARTITION_PREFIX, record.find({"ts": {"$gte": window.start, "$lt": window.end}}))
