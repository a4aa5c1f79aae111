"""Read-side queries of the dashboard, the CLI and the steps, kept to what FerretDB v1 and MongoDB
both support (``find`` with a range filter, sort and projection); resampling is done in pandas
(:mod:`btc_pipeline.bars`) rather than with ``$dateTrunc``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from pymongo.collection import Collection

from btc_pipeline.timeutil import to_utc
from btc_pipeline.window import Window

CANDLE_FIELDS = {"_id": 0, "source": 1, "ts": 1, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1}


def load_candles(prices: Collection[Any], since: datetime, *, source: str | None = None) -> pd.DataFrame:
    """1-minute candles with ``ts >= since``, oldest first, one row per (source, ts).

    Returns:
        Columns ``source, ts, open, high, low, close, volume`` (``ts`` tz-aware UTC); empty if none.
    """
    query: dict[str, Any] = {"kind": "candle_1m", "ts": {"$gte": since}}
    if source:
        query["source"] = source
    rows = list(prices.find(query, CANDLE_FIELDS).sort("ts", 1))
    frame = pd.DataFrame(rows, columns=[k for k in CANDLE_FIELDS if k != "_id"])
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def latest_tick(prices: Collection[Any]) -> dict[str, Any] | None:
    """The most recent tick across sources (or None)."""
    return prices.find_one({"kind": "tick"}, {"_id": 0}, sort=[("ts", -1)])


def latest_ticks_by_source(prices: Collection[Any], since: datetime) -> pd.DataFrame:
    """The newest tick of each exchange since ``since``, with its deviation from the median.

    Returns:
        Columns ``source, price, ts, deviation_pct`` (one row per exchange, by price); empty if none.
    """
    newest: dict[str, dict[str, Any]] = {}
    for doc in prices.find({"kind": "tick", "ts": {"$gte": since}}, {"_id": 0, "source": 1, "price": 1, "ts": 1}).sort(
        "ts", -1
    ):
        newest.setdefault(doc["source"], doc)
    frame = pd.DataFrame(list(newest.values()), columns=["source", "price", "ts"])
    if not frame.empty:
        median = float(frame["price"].median())
        frame["deviation_pct"] = ((frame["price"] / median - 1) * 100).round(3)
        frame = frame.sort_values("price", ignore_index=True)
    return frame


def recent_runs(runs: Collection[Any], limit: int = 20) -> pd.DataFrame:
    """The latest ``pipeline_runs`` documents, newest first."""
    return pd.DataFrame(list(runs.find({}, {"batch_ms": 0}).sort("started_at", -1).limit(limit)))


def _candle_filter(window: Window, symbol: str, source: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"kind": "candle_1m", "symbol": symbol, "ts": {"$gte": window.start, "$lt": window.end}}
    if source is not None:
        query["source"] = source
    return query


def present_minutes(prices: Collection[Any], window: Window, symbol: str, source: str | None = None) -> set[datetime]:
    """Minutes of ``window`` that have a 1-minute candle (of ``source``, or of any exchange when ``None``)."""
    cursor = prices.find(_candle_filter(window, symbol, source), {"ts": 1, "_id": 0}, batch_size=10_000)
    return {to_utc(doc["ts"]) for doc in cursor}


def has_candle_before(prices: Collection[Any], ts: datetime, symbol: str) -> bool:
    """Whether any 1-minute candle older than ``ts`` is stored."""
    return prices.find_one({"kind": "candle_1m", "symbol": symbol, "ts": {"$lt": ts}}, {"_id": 1}) is not None


def reported_no_trades(
    no_trade: Collection[Any], window: Window, symbol: str, source: str | None = None
) -> dict[datetime, set[str]]:
    """Minutes of ``window`` that an exchange said it had no trades in, with the exchanges that said so.

    Args:
        no_trade: The ``btc.no_trade_minutes`` collection.
        window: The range to look at.
        symbol: The pipeline's symbol.
        source: Only reports of this exchange; any exchange when ``None``.

    Returns:
        Minute start -> names of the exchanges that reported no trades in it.
    """
    query: dict[str, Any] = {"symbol": symbol, "ts": {"$gte": window.start, "$lt": window.end}}
    if source is not None:
        query["source"] = source
    reports: dict[datetime, set[str]] = {}
    for doc in no_trade.find(query, {"ts": 1, "source": 1, "_id": 0}, batch_size=10_000):
        reports.setdefault(to_utc(doc["ts"]), set()).add(str(doc["source"]))
    return reports
