"""The :class:`Store`: the one object through which the pipeline reads and writes MongoDB.

Steps, the Airflow task layer, the CLI and the dashboard get a ``Store`` (from
:meth:`Store.connect`, or from an Airflow connection's client in the task layer) and call its
methods; they never touch a collection themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import pandas as pd
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from btc_pipeline.schema import Observation
from btc_pipeline.store import prices, reads, records
from btc_pipeline.store.collections import NO_TRADE_MINUTES, PIPELINE_RUNS, PRICES, REJECTS
from btc_pipeline.store.prices import UpsertResult
from btc_pipeline.window import Window

P = ParamSpec("P")
R = TypeVar("R")


class StoreError(RuntimeError):
    """MongoDB could not be reached or refused a read; the message says where and what to check."""


def _read(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a driver error of a read into a :class:`StoreError` naming the database."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except PyMongoError as exc:
            store = args[0]
            assert isinstance(store, Store)
            raise StoreError(f"MongoDB read failed on database {store.db.name!r}: {exc}") from exc

    return wrapper


class Store:
    """MongoDB database ``btc`` (or the configured one): its writes and its reads."""

    def __init__(self, db: Database[Any]) -> None:
        self.db = db

    @classmethod
    def lazy(cls, uri: str, db_name: str, *, timeout_ms: int = 3000) -> Store:
        """A store whose client connects on first use (for long-lived readers: dashboard, API).

        Args:
            uri: A ``mongodb://`` URI (``BTC_MONGO_URI``).
            db_name: The database (``BTC_MONGO_DB``).
            timeout_ms: How long a read waits for a server before it fails with :class:`StoreError`.
        """
        client: MongoClient[Any] = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
        return cls(client[db_name])

    @classmethod
    def connect(cls, uri: str, db_name: str, *, timeout_ms: int = 5000) -> Store:
        """Connect to ``uri`` and check that the server answers.

        Args:
            uri: A ``mongodb://`` URI (``BTC_MONGO_URI``).
            db_name: The database (``BTC_MONGO_DB``).
            timeout_ms: How long to wait for a server.

        Returns:
            The store.

        Raises:
            StoreError: No server answered at ``uri``; the message says what to set.
        """
        client: MongoClient[Any] = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            client.close()
            raise StoreError(
                f"cannot reach MongoDB at {uri} ({exc.__class__.__name__}): is the stack up? "
                "Set BTC_MONGO_URI to its address"
            ) from None
        return cls(client[db_name])

    def close(self) -> None:
        """Close the client's connections."""
        self.db.client.close()

    # --- writes -------------------------------------------------------------------------------
    def ensure_indexes(self) -> None:
        """Create the indexes the pipeline relies on; safe to call on every run."""
        prices.ensure_indexes(self.db)

    def write_prices(self, observations: Sequence[Observation], *, now: datetime | None = None) -> UpsertResult:
        """Store observations idempotently in ``btc.prices`` (see :func:`btc_pipeline.store.prices.upsert_prices`)."""
        return prices.upsert_prices(self.db[PRICES], observations, now=now)

    def record_rejects(self, docs: Iterable[Mapping[str, Any]]) -> int:
        """Store rejected messages once each; returns how many were new."""
        return records.record_rejects(self.db[REJECTS], docs)

    def record_run(
        self, dag_id: str, run_id: str, *, started_at: datetime, finished_at: datetime, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Store one run's statistics in ``btc.pipeline_runs`` (a task retry replaces them).

        Returns:
            The stored document.
        """
        doc = records.run_document(dag_id, run_id, started_at, finished_at, fields)
        records.record_run(self.db[PIPELINE_RUNS], doc)
        return doc

    def record_no_trade_minutes(
        self, source: str, symbol: str, minutes: Sequence[datetime], run_id: str, *, reported_at: datetime
    ) -> int:
        """Store the minutes ``source`` said it had no trades in; returns how many were new."""
        return records.record_no_trade_minutes(self.db[NO_TRADE_MINUTES], source, symbol, minutes, run_id, reported_at)

    # --- reads --------------------------------------------------------------------------------
    @_read
    def present_minutes(self, window: Window, symbol: str, source: str | None = None) -> set[datetime]:
        """Minutes of ``window`` with a 1-minute candle (of ``source``, or of any exchange)."""
        return reads.present_minutes(self.db[PRICES], window, symbol, source)

    @_read
    def no_trade_reports(self, window: Window, symbol: str, source: str | None = None) -> dict[datetime, set[str]]:
        """Minutes of ``window`` an exchange said it had no trades in, with those exchanges."""
        return reads.reported_no_trades(self.db[NO_TRADE_MINUTES], window, symbol, source)

    @_read
    def has_candle_before(self, ts: datetime, symbol: str) -> bool:
        """Whether a 1-minute candle older than ``ts`` is stored."""
        return reads.has_candle_before(self.db[PRICES], ts, symbol)

    @_read
    def candles(self, since: datetime, *, source: str | None = None) -> pd.DataFrame:
        """1-minute candles since ``since`` (see :func:`btc_pipeline.store.reads.load_candles`)."""
        return reads.load_candles(self.db[PRICES], since, source=source)

    @_read
    def latest_tick(self) -> dict[str, Any] | None:
        """The most recent tick of any exchange."""
        return reads.latest_tick(self.db[PRICES])

    @_read
    def latest_ticks_by_source(self, since: datetime) -> pd.DataFrame:
        """Each exchange's newest tick since ``since``, with its deviation from their median."""
        return reads.latest_ticks_by_source(self.db[PRICES], since)

    @_read
    def recent_runs(self, limit: int = 20) -> pd.DataFrame:
        """The latest ``pipeline_runs`` documents, newest first."""
        return reads.recent_runs(self.db[PIPELINE_RUNS], limit)
