"""Read-side queries for the dashboard, kept to what FerretDB v1 and MongoDB both support
(``find`` with a range filter, sort and projection on the ``kind_ts`` index); resampling is done
in pandas rather than with ``$dateTrunc``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from pymongo.database import Database

from btc_pipeline.store import PIPELINE_RUNS, PRICES

CANDLE_FIELDS = {"_id": 0, "source": 1, "ts": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}


def load_candles(db: Database[Any], since: datetime, *, source: str | None = None) -> pd.DataFrame:
    """1-minute candles with ``ts >= since``, oldest first, one row per (source, ts).

    Returns:
        Columns ``source, ts, open, high, low, close, volume`` (``ts`` tz-aware UTC); empty if none.
    """
    query: dict[str, Any] = {"kind": "candle_1m", "ts": {"$gte": since}}
    if source:
        query["source"] = source
    rows = list(db[PRICES].find(query, CANDLE_FIELDS).sort("ts", 1))
    frame = pd.DataFrame(rows, columns=[k for k in CANDLE_FIELDS if k != "_id"])
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def resample_candles(candles: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Aggregate 1-minute candles of one source into coarser candles (e.g. ``"5min"``)."""
    if candles.empty or rule in ("1min", "1T"):
        return candles
    indexed = candles.set_index("ts")
    out = indexed.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    return out.dropna(subset=["close"]).reset_index()


def latest_tick(db: Database[Any]) -> dict[str, Any] | None:
    """The most recent tick across sources (or None)."""
    return db[PRICES].find_one({"kind": "tick"}, {"_id": 0}, sort=[("ts", -1)])


def latest_ticks_by_source(db: Database[Any], since: datetime) -> pd.DataFrame:
    """The newest tick of each exchange since ``since``, with its deviation from the median.

    Returns:
        Columns ``source, price, ts, deviation_pct`` (one row per exchange, by price); empty if none.
    """
    newest: dict[str, dict[str, Any]] = {}
    for doc in (
        db[PRICES]
        .find({"kind": "tick", "ts": {"$gte": since}}, {"_id": 0, "source": 1, "price": 1, "ts": 1})
        .sort("ts", -1)
    ):
        newest.setdefault(doc["source"], doc)
    frame = pd.DataFrame(list(newest.values()), columns=["source", "price", "ts"])
    if not frame.empty:
        median = float(frame["price"].median())
        frame["deviation_pct"] = ((frame["price"] / median - 1) * 100).round(3)
        frame = frame.sort_values("price", ignore_index=True)
    return frame


def recent_runs(db: Database[Any], limit: int = 20) -> pd.DataFrame:
    """The latest ``pipeline_runs`` documents, newest first."""
    rows = list(db[PIPELINE_RUNS].find({}, {"batch_ms": 0}).sort("started_at", -1).limit(limit))
    return pd.DataFrame(rows)


def pick_resample_rule(span: timedelta) -> str:
    """A bar size that keeps a chart of ``span`` around a few hundred candles."""
    if span <= timedelta(hours=6):
        return "1min"
    if span <= timedelta(hours=24):
        return "5min"
    return "1h"
