"""Gaps in the 1-minute candle series: which minutes of a range have no candle in ``btc.prices``,
told apart from the minutes an exchange said it had no trades in, merged into ranges.

"The exchange said so" is recorded in ``btc.no_trade_minutes``, one document per exchange and
minute (``_id`` = ``source|symbol|ts``): when an ingest or backfill fetched a window after the
settle delay (:data:`btc_pipeline.ingest.CANDLE_SETTLE_DELAY`) and the exchange answered without a
candle for a minute, that minute is written there by the task that fetched it (see
:func:`record_no_trade_minutes`). A minute with a candle is present whatever that collection says.

The classification (:func:`classify_minutes`) is a pure function; :func:`find_gaps` feeds it from
MongoDB with two range queries that stay inside what FerretDB v1 supports.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from btc_pipeline.schema import format_ts
from btc_pipeline.store import DUPLICATE_KEY, PRICES
from btc_pipeline.window import MINUTE, Window

NO_TRADE_MINUTES = "no_trade_minutes"

Status = Literal["missing", "no_trades"]


@dataclass(frozen=True)
class MinuteRange:
    """Consecutive minutes ``[start, end)`` without a candle, all for the same reason.

    ``status`` is ``missing`` (a real hole: nobody said there were no trades) or ``no_trades``
    (``sources`` said they had no trades in those minutes).
    """

    start: datetime
    end: datetime
    status: Status
    sources: tuple[str, ...] = ()

    @property
    def minutes(self) -> int:
        return int((self.end - self.start) / MINUTE)

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_ts(self.start),
            "end": format_ts(self.end),
            "minutes": self.minutes,
            "status": self.status,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class GapReport:
    """The gaps of one range: how many minutes have a candle, and the ranges that have none."""

    window: Window
    source: str | None
    present: int
    ranges: list[MinuteRange] = field(default_factory=list)

    @property
    def missing(self) -> list[MinuteRange]:
        """The real holes (no candle, and no exchange said it had no trades)."""
        return [r for r in self.ranges if r.status == "missing"]

    @property
    def no_trades(self) -> list[MinuteRange]:
        """The minutes without a candle that an exchange said it had no trades in."""
        return [r for r in self.ranges if r.status == "no_trades"]

    @property
    def missing_minutes(self) -> int:
        return sum(r.minutes for r in self.missing)

    @property
    def no_trade_minutes(self) -> int:
        return sum(r.minutes for r in self.no_trades)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_ts(self.window.start),
            "end": format_ts(self.window.end),
            "source": self.source,
            "minutes": self.window.minute_count,
            "present": self.present,
            "missing_minutes": self.missing_minutes,
            "no_trade_minutes": self.no_trade_minutes,
            "ranges": [r.to_dict() for r in self.ranges],
        }


def classify_minutes(
    window: Window, present: Iterable[datetime], no_trades: Mapping[datetime, Iterable[str]]
) -> list[MinuteRange]:
    """Merge the minutes of ``window`` that have no candle into ranges, by reason.

    Args:
        window: The range checked, ``[start, end)``.
        present: Minutes (their start) that have a candle; those outside the window are ignored.
        no_trades: For minutes an exchange said it had no trades in, the names of those exchanges.

    Returns:
        The ranges without a candle, oldest first; consecutive minutes of the same status are one
        range (a ``no_trades`` range lists every exchange that reported any of its minutes).
    """
    have = set(present)
    ranges: list[MinuteRange] = []
    run_start: datetime | None = None
    run_status: Status | None = None
    run_sources: set[str] = set()

    def close(end: datetime) -> None:
        if run_start is not None and run_status is not None:
            ranges.append(MinuteRange(run_start, end, run_status, tuple(sorted(run_sources))))

    for minute in window.minutes():
        if minute in have:
            close(minute)
            run_start, run_status, run_sources = None, None, set()
            continue
        reporters = set(no_trades.get(minute, ()))
        status: Status = "no_trades" if reporters else "missing"
        if status != run_status:
            close(minute)
            run_start, run_status, run_sources = minute, status, set()
        run_sources |= reporters
    close(window.end)
    return ranges


def merge_minutes(minutes: Iterable[datetime]) -> list[Window]:
    """Merge minute starts into the fewest consecutive windows.

    Args:
        minutes: Whole-minute UTC datetimes, in any order, duplicates allowed.

    Returns:
        Disjoint windows covering exactly those minutes, oldest first.
    """
    windows: list[Window] = []
    start: datetime | None = None
    end: datetime | None = None
    for minute in sorted(set(minutes)):
        if end is not None and minute == end:
            end = minute + MINUTE
            continue
        if start is not None and end is not None:
            windows.append(Window(start, end))
        start, end = minute, minute + MINUTE
    if start is not None and end is not None:
        windows.append(Window(start, end))
    return windows


def _as_utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _candle_filter(window: Window, symbol: str, source: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"kind": "candle_1m", "symbol": symbol, "ts": {"$gte": window.start, "$lt": window.end}}
    if source is not None:
        query["source"] = source
    return query


def present_minutes(prices: Collection[Any], window: Window, symbol: str, source: str | None = None) -> set[datetime]:
    """Minutes of ``window`` that have a 1-minute candle in ``prices``.

    Args:
        prices: The ``btc.prices`` collection.
        window: The range to look at.
        symbol: The pipeline's symbol (``BTC-USD``).
        source: Only candles of this exchange; any exchange when ``None``.

    Returns:
        The start of every minute with at least one candle.
    """
    cursor = prices.find(_candle_filter(window, symbol, source), {"ts": 1, "_id": 0}, batch_size=10_000)
    return {_as_utc(doc["ts"]) for doc in cursor}


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
        reports.setdefault(_as_utc(doc["ts"]), set()).add(str(doc["source"]))
    return reports


def find_gaps(db: Database[Any], window: Window, symbol: str, source: str | None = None) -> GapReport:
    """The gaps of ``window`` in ``btc.prices``: real holes and minutes without trades, as ranges.

    Args:
        db: The ``btc`` database.
        window: The range to check.
        symbol: The pipeline's symbol.
        source: Check the candles of this exchange only (and only its no-trade reports); any
            exchange when ``None``.

    Returns:
        The report (see :class:`GapReport`).
    """
    present = present_minutes(db[PRICES], window, symbol, source)
    no_trades = reported_no_trades(db[NO_TRADE_MINUTES], window, symbol, source)
    return GapReport(
        window=window,
        source=source,
        present=len(present),
        ranges=classify_minutes(window, present, no_trades),
    )


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
    *,
    reported_at: datetime | None = None,
) -> int:
    """Store the minutes ``source`` answered without a candle for, once each.

    Insert-first, like :func:`btc_pipeline.store.upsert_prices`: a minute reported again (a re-run)
    is a duplicate key and keeps its first report.

    Args:
        no_trade: The ``btc.no_trade_minutes`` collection.
        source: The exchange that answered.
        symbol: The pipeline's symbol.
        minutes: Minute starts without a candle (after the settle delay).
        run_id: The Airflow run that fetched them.
        reported_at: When the exchange answered (now when omitted).

    Returns:
        The number of minutes newly recorded.

    Raises:
        pymongo.errors.PyMongoError: Any failure other than "this minute is recorded already".
    """
    if not minutes:
        return 0
    no_trade.create_index([("symbol", ASCENDING), ("ts", ASCENDING)], name="symbol_ts")
    docs = no_trade_documents(source, symbol, minutes, run_id, reported_at or datetime.now(UTC))
    try:
        return len(no_trade.insert_many(docs, ordered=False).inserted_ids)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors) or exc.details.get("writeConcernErrors"):
            raise
        return int(exc.details.get("nInserted", 0))
