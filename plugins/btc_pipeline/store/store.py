"""The :class:`Store`: the one object through which the pipeline reads and writes MongoDB.

Steps, the Airflow task layer, the CLI and the dashboard get a ``Store`` (from
:meth:`Store.connect`, or from an Airflow connection's client in the task layer) and call its
methods; they never touch a collection themselves.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

import pandas as pd
from bson.errors import BSONError
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError, WTimeoutError

from btc_pipeline.alerts import Alert, AlertState
from btc_pipeline.bars import Bar, as_read
from btc_pipeline.errors import BtcPipelineError
from btc_pipeline.health import LatestObservation, RunRecord
from btc_pipeline.notify.episodes import Episode
from btc_pipeline.redact import redact_text, redact_uri
from btc_pipeline.schema import Observation
from btc_pipeline.store import alerts, loads, locks, notifications, notrades, prices, reads, rebuild, records
from btc_pipeline.store.buckets import BucketConflictError
from btc_pipeline.store.collections import NO_TRADE_MINUTES, PIPELINE_RUNS, PRICES, REJECTS
from btc_pipeline.store.inserts import insert_new
from btc_pipeline.store.latest import LATEST, read_latest, update_latest
from btc_pipeline.store.layout import CONSENSUS, LEVELS, M1
from btc_pipeline.store.rollups import Rollups, minute_bars
from btc_pipeline.timeutil import to_utc
from btc_pipeline.window import Window

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class StoreError(BtcPipelineError, RuntimeError):
    """MongoDB could not be reached or refused a read; the message says where and what to check.

    Its message never holds a password: URIs in it, and in the driver's text it quotes, are redacted.
    """


def _client(uri: str, timeout_ms: int) -> MongoClient[Any]:
    """A client of ``uri`` (no connection yet); a URI the driver refuses is a :class:`StoreError`."""
    try:
        return MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
    except (PyMongoError, ValueError) as exc:  # InvalidURI / ConfigurationError, or ValueError for a bad port
        raise StoreError(
            f"BTC_MONGO_URI is not a MongoDB URI the driver accepts ({redact_uri(uri)}): {redact_text(str(exc))}"
        ) from None


#: Server error codes that blame the server or our access to it, never a document: unauthorized,
#: authentication failed, shutting down, interrupted, not primary, stepped down, ...
_OUTAGE_CODES = frozenset({6, 7, 13, 18, 89, 91, 189, 262, 8000, 9001, 10107, 11600, 11602, 13435, 13436})


def write_failure(exc: BaseException) -> Literal["outage", "store_refused", "internal_error"]:
    """What a failed write says: ``outage``, the store cannot be written *now* (read the batch again
    later); ``store_refused``, the server refused what was written; ``internal_error``, our code broke
    on a value. The last two blame a message (isolate it and dead-letter it).

    Outages: a server that does not answer or times out, refused credentials, a server shutting down
    or not primary, a writer lock held too long, the read model changing under the writer.
    """
    if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError | OSError | MemoryError):
        return "outage"
    if isinstance(exc, locks.LockTimeoutError | BucketConflictError):
        return "outage"
    if isinstance(exc, OperationFailure) and (exc.code in _OUTAGE_CODES or exc.has_error_label("RetryableWriteError")):
        return "outage"
    return "store_refused" if isinstance(exc, PyMongoError | BSONError) else "internal_error"


@dataclass(frozen=True)
class WriteResult:
    """What a batch did: to ``btc.prices`` (new, corrected, unchanged) and to the read model."""

    inserted: int = 0
    modified: int = 0
    unchanged: int = 0
    minutes_changed: int = 0
    buckets_written: int = 0
    #: Time spent on ``btc.prices`` and on the read model, in milliseconds.
    prices_ms: float = 0.0
    read_model_ms: float = 0.0

    def __add__(self, other: WriteResult) -> WriteResult:
        """The counts of two writes together (a batch written in parts)."""
        return WriteResult(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def _timed(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[R, float]:
    """What ``call`` returned, and how long it took in seconds."""
    started = time.monotonic()
    return call(*args, **kwargs), time.monotonic() - started


def _read(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a driver error of a read into a :class:`StoreError` naming the database."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except PyMongoError as exc:
            store = args[0]
            assert isinstance(store, Store)
            raise StoreError(f"MongoDB read failed on database {store.db.name!r}: {redact_text(str(exc))}") from exc

    return wrapper


class Store:
    """MongoDB database ``btc`` (or the configured one): its writes and its reads."""

    def __init__(self, db: Database[Any], *, cache: reads.BucketCache | None = None) -> None:
        self.db = db
        #: Closed buckets kept by a long-lived reader (see :class:`~btc_pipeline.store.reads.BucketCache`).
        self.cache = cache

    @classmethod
    def lazy(cls, uri: str, db_name: str, *, timeout_ms: int = 3000, cache: reads.BucketCache | None = None) -> Store:
        """A store whose client connects on first use (for long-lived readers: dashboard, API).

        Args:
            uri: A ``mongodb://`` URI (``BTC_MONGO_URI``).
            db_name: The database (``BTC_MONGO_DB``).
            timeout_ms: How long a read waits for a server before it fails with :class:`StoreError`.
            cache: Keep the buckets of past spans in this process (bars and gaps reads use it).

        Raises:
            StoreError: The driver refuses ``uri`` (the message masks its password).
        """
        return cls(_client(uri, timeout_ms)[db_name], cache=cache)

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
            StoreError: No server answered at ``uri``, or the driver refused it; the message says what to
                set, with the password masked.
        """
        client = _client(uri, timeout_ms)
        try:
            client.admin.command("ping")
        except PyMongoError as exc:
            client.close()
            raise StoreError(
                f"cannot reach MongoDB at {redact_uri(uri)} ({exc.__class__.__name__}): is the stack up? "
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

    def write_observations(
        self, observations: Sequence[Observation], *, now: datetime | None = None, history: bool = False
    ) -> WriteResult:
        """Store a batch of observations in ``btc.prices`` and the read model, idempotently.

        ``btc.prices`` first (insert-first; a candle that wins over a stored one by the overwrite
        rule corrects it), then the read model's bars of every level and the latest-observation hot
        set. A batch written twice, or again after a failure between the two, leaves the same data.

        Args:
            observations: Valid observations (a key may appear twice: the overwrite rule decides).
            now: When they are stored (``first_seen_at`` of new documents).
            history: A large batch of the history lane: ``btc.prices`` and the read model written at
                the same time, the read model once for the batch, under its lock taken with low
                priority (a waiting live writer goes first).

        Returns:
            Counts for ``btc.prices`` and for the read model.
        """
        stored_at = now or datetime.now(UTC)
        latest = prices.collapse(observations)
        writer = Rollups(self.db)
        bars = minute_bars(latest.values())
        if history:
            # The insert waits on the server while the bars are computed here. Merging is order-free
            # (the latest fetch wins), so the stored versions that win over the batch's (known once
            # the insert has answered) are merged in afterwards; whether a duplicate corrects
            # btc.prices is decided against the read model as it was before this batch.
            before = writer.snapshot(bars)
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prices") as pool:
                inserting = pool.submit(_timed, prices.insert_observations, self.db[PRICES], latest, stored_at)
                first, read_model_s = _timed(writer.apply, bars, low_priority=True)
                (inserted, existing_keys), prices_s = inserting.result()
            existing = [latest[k] for k in existing_keys]
            modified, kept = prices.correct_candles(self.db[PRICES], existing, lambda x, m: before.get((x, m)))
            rolled = [first, writer.apply(kept, low_priority=True)] if kept else [first]
        else:
            started = time.monotonic()
            inserted, existing_keys = prices.insert_observations(self.db[PRICES], latest, stored_at)
            existing = [latest[k] for k in existing_keys]
            modified, kept = prices.correct_candles(self.db[PRICES], existing, writer.stored_candle)
            for exchange, minutes in kept.items():  # what btc.prices holds is newer: the read model catches up
                bars.setdefault(exchange, {}).update(minutes)
            prices_s = time.monotonic() - started
            applied, read_model_s = _timed(writer.apply, bars)
            rolled = [applied]
        _, latest_s = _timed(update_latest, self.db[LATEST], latest.values(), stored_at)
        return WriteResult(
            inserted=inserted,
            modified=modified,
            unchanged=len(latest) - inserted - modified,
            minutes_changed=sum(sum(r.changed_minutes.values()) for r in rolled),
            buckets_written=sum(r.buckets_written for r in rolled),
            prices_ms=round(prices_s * 1000, 1),
            read_model_ms=round((read_model_s + latest_s) * 1000, 1),
        )

    def record_rejects(self, docs: Iterable[Mapping[str, Any]], *, day: str) -> int:
        """Store rejected messages once each, and count them by reason under ``day`` (``YYYY-MM-DD``).

        Returns:
            How many were new.
        """
        rejects = list(docs)
        new, _ = insert_new(self.db[REJECTS], rejects)  # _id topic|partition|offset: a re-read stores each once
        records.count_rejects(self.db[records.REJECTS_SUMMARY], rejects, day)
        return new

    def record_run(
        self, dag_id: str, run_id: str, *, started_at: datetime, finished_at: datetime, fields: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Store one run's statistics in ``btc.pipeline_runs`` (a task retry replaces them) and in
        its DAG's last runs.

        Returns:
            The stored document.
        """
        doc = records.run_document(dag_id, run_id, started_at, finished_at, fields)
        records.record_run(self.db[PIPELINE_RUNS], self.db[records.RUNS_LATEST], doc)
        return doc

    def record_no_trade_minutes(
        self, source: str, symbol: str, minutes: Sequence[datetime], run_id: str, *, reported_at: datetime
    ) -> int:
        """Store the minutes ``source`` said it had no trades in; returns how many were new."""
        docs = notrades.no_trade_documents(source, symbol, minutes, run_id, reported_at)
        return notrades.record_no_trade_minutes(self.db, self.db[NO_TRADE_MINUTES], docs)

    def expire_ticks(self, before: datetime) -> int:
        """Delete the raw ticks older than ``before`` from ``btc.prices`` (retention).

        The read model's tick bars of those minutes stay (a rebuild never removes a bar), so charts
        keep their history; candles are never expired. On FerretDB this reads all of ``btc.prices``
        once; on MongoDB the ``kind_ts`` index serves it.

        Returns:
            How many ticks were deleted.
        """
        return int(self.db[PRICES].delete_many({"kind": "tick", "ts": {"$lt": before}}).deleted_count)

    def locked(self, name: str) -> AbstractContextManager[None]:
        """Hold the writer lock ``name`` (see :mod:`btc_pipeline.store.locks`) for a ``with`` block."""
        return locks.locked(self.db, name)

    def alert_state(self) -> tuple[AlertState, int]:
        """What the alert evaluation remembers, and its version (for :meth:`save_alert_state`)."""
        return alerts.load_state(self.db)

    def save_alert_state(self, state: AlertState, version: int) -> bool:
        """Store the alert evaluation's state if nobody changed it since ``version``."""
        return alerts.save_state(self.db, state, version)

    def record_alerts(self, fired: Sequence[Alert]) -> int:
        """Store fired alerts once each; returns how many were new."""
        return alerts.record_alerts(self.db, fired)

    def claim_alerts(self, fired: Sequence[Alert], now: datetime, lease: timedelta) -> list[Alert]:
        """Those of ``fired`` this caller sends (see :func:`btc_pipeline.store.alerts.claim_alerts`)."""
        return alerts.claim_alerts(self.db, fired, now, lease)

    def mark_alert_notified(self, alert: Alert, now: datetime) -> None:
        """``alert`` was handed to its channels (see :mod:`btc_pipeline.store.alerts`)."""
        alerts.mark_notified(self.db, alert, now)

    def unsent_alerts(self, now: datetime, within: timedelta, lease: timedelta) -> list[Alert]:
        """The alerts of the last ``within`` nobody sent, or whose sender died (a claim older than ``lease``)."""
        return alerts.unsent_alerts(self.db, now, within, lease)

    def record_deliveries(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """Store notification deliveries in ``btc.notifications`` and the last ones (see
        :mod:`btc_pipeline.store.notifications`)."""
        notifications.record_deliveries(self.db, docs)

    def update_episode(self, key: str, change: Callable[[Episode], tuple[T, Episode]]) -> T:
        """Change the stored state of a lasting problem (a failing DAG, stale data); returns what
        ``change`` said on the state that was stored."""
        return notifications.update_episode(self.db, key, change)

    def episode(self, key: str) -> Episode:
        """The stored state of a lasting problem (closed when none)."""
        return Episode.from_document(self.db[notifications.STATE].find_one({"_id": key}))

    def rebuild_read_model(
        self, window: Window, *, progress: rebuild.ProgressCallback | None = None, exact: bool = False
    ) -> rebuild.RebuildSummary:
        """Rebuild the read model of ``window`` from ``btc.prices`` (see :mod:`btc_pipeline.store.rebuild`)."""
        return rebuild.rebuild(self.db, window, progress=progress, exact=exact)

    def record_history_load(self, load: loads.HistoryLoad) -> None:
        """Record a history backfill run as started (see :mod:`btc_pipeline.store.loads`)."""
        loads.record_start(self.db[loads.HISTORY_LOADS], load)

    def finish_history_load(self, run_id: str, state: str, finished_at: datetime) -> None:
        """Record how a history backfill run ended (one document per run: the update scans them)."""
        self.db[loads.HISTORY_LOADS].update_one({"_id": run_id}, {"$set": {"state": state, "finished_at": finished_at}})

    # --- reads --------------------------------------------------------------------------------
    @_read
    def history_load(self) -> loads.HistoryLoad | None:
        """The history backfill run started last (``None``: none yet)."""
        return loads.latest_load(self.db[loads.HISTORY_LOADS])

    @_read
    def minutes_with_candles(self, window: Window) -> int:
        """About how many minutes of ``window`` have a candle of some exchange, from the daily bars
        of the consensus (whole days: the first and last day may count minutes just outside)."""
        days = self.bars(CONSENSUS, "1d", window)
        return min(window.minute_count, int(days["n"].sum())) if not days.empty else 0

    @_read
    def bars(self, series: str, interval: str, window: Window) -> pd.DataFrame:
        """Bars of ``series`` (an exchange, ``consensus``, or ``<exchange>-ticks``) at ``interval``
        (``1m``, ``5m``, ``1h``, ``1d``) that start in ``window``, oldest first.

        Returns:
            Columns ``ts, open, high, low, close, volume, n``; empty when there is none.

        Raises:
            ValueError: Unknown interval.
        """
        return reads.bars_frame(self.bar_list(series, interval, window))

    @_read
    def bar_list(self, series: str, interval: str, window: Window) -> list[tuple[datetime, Bar]]:
        """The bars of :meth:`bars` as ``(start, bar)`` pairs, for readers that need no frame (volumes
        to the satoshi, see :func:`~btc_pipeline.bars.as_read`).

        Raises:
            ValueError: Unknown interval.
        """
        level = LEVELS.get(interval)
        if level is None:
            raise ValueError(f"interval {interval!r} is not one of {', '.join(LEVELS)}")
        return [
            (ts, as_read(bar))
            for ts, bar in reads.read_bars(self.db, level, series, window.start, window.end, self.cache)
        ]

    @_read
    def latest(self) -> list[LatestObservation]:
        """The newest candle and tick of each exchange (the hot set)."""
        return read_latest(self.db[LATEST])

    @_read
    def present_minutes(self, window: Window, source: str | None = None) -> set[datetime]:
        """Minutes of ``window`` with a 1-minute candle (of ``source``, or of any exchange)."""
        # a consensus minute exists exactly when some exchange has a candle in it
        return {ts for ts, _ in reads.read_bars(self.db, M1, source or CONSENSUS, window.start, window.end, self.cache)}

    @_read
    def no_trade_reports(self, window: Window, symbol: str, source: str | None = None) -> dict[datetime, set[str]]:
        """Minutes of ``window`` an exchange said it had no trades in, with those exchanges."""
        return notrades.reported_no_trades(self.db, window, symbol, source)

    @_read
    def first_candle(self) -> datetime | None:
        """The minute of the oldest stored candle (``None``: none yet)."""
        return reads.first_candle(self.db)

    @_read
    def recent_alerts(self, within: timedelta = timedelta(days=1)) -> list[Alert]:
        """The alerts the pipeline recorded in the last ``within``, newest first."""
        return alerts.recent_alerts(self.db, datetime.now(UTC), within)

    @_read
    def recent_deliveries(self) -> list[dict[str, Any]]:
        """The last notification deliveries, newest first: ``at``, ``topic``, ``kind``, ``title``,
        ``channel`` (redacted), ``outcome`` (``sent``/``failed``/``invalid_url``), ``attempts``, ``detail``."""
        doc = self.db[notifications.LATEST].find_one({"_id": "latest"}) or {}
        return [{**d, "at": to_utc(d["at"])} for d in doc.get("deliveries", [])]

    @_read
    def reject_counts(self) -> dict[str, dict[str, int]]:
        """Rejected messages per UTC day (``YYYY-MM-DD``) and reason (the last month)."""
        doc = self.db[records.REJECTS_SUMMARY].find_one({"_id": "summary"}) or {}
        return {day: dict(counts) for day, counts in doc.get("days", {}).items()}

    @_read
    def recent_runs(self) -> list[RunRecord]:
        """The runs the store keeps (the last :data:`~btc_pipeline.store.records.KEEP_RUNS` of each
        DAG), newest first."""
        return records.latest_runs(self.db[records.RUNS_LATEST])
