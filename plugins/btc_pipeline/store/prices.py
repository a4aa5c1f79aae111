"""``btc.prices``, the system of record: idempotent writes of observations, and its indexes.

Everything here sticks to what FerretDB v1 and MongoDB both support (compound unique indexes,
unordered bulk inserts, ``$in``), so the same code runs on the local stack and in Docker.

Overwrite rule for a key seen twice (re-delivery, re-run, backfill):

- ``candle_1m``: the latest *fetch* wins: a re-run of a window re-reads the exchange's settled
  candle, which may correct a candle fetched seconds after the minute closed. A re-delivered
  message with an older ``fetched_at`` never overwrites a newer one; identical values leave the
  document untouched.
- ``tick``: the first one wins: a tick is a point observation, a re-delivery carries nothing newer.

``first_seen_at`` records when the pipeline first stored the observation (for freshness
measurement); it is metadata, never part of the observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from btc_pipeline.schema import Observation
from btc_pipeline.store.collections import NO_TRADE_MINUTES, PIPELINE_RUNS, PRICES, REJECTS
from btc_pipeline.store.inserts import insert_new

CANDLE_VALUES = ("open", "high", "low", "close", "price", "volume")


@dataclass(frozen=True)
class UpsertResult:
    """What a bulk upsert did: new documents, documents changed, and documents left as they were."""

    inserted: int
    modified: int
    unchanged: int


def ensure_indexes(db: Database[Any]) -> None:
    """Create the indexes the pipeline relies on; safe to call on every run."""
    prices = db[PRICES]
    prices.create_index(
        [("source", ASCENDING), ("symbol", ASCENDING), ("kind", ASCENDING), ("ts", ASCENDING)],
        name="natural_key",
        unique=True,
    )
    prices.create_index([("kind", ASCENDING), ("ts", DESCENDING)], name="kind_ts")
    db[REJECTS].create_index([("rejected_at", DESCENDING)], name="rejected_at")
    db[PIPELINE_RUNS].create_index([("dag_id", ASCENDING), ("started_at", DESCENDING)], name="dag_started")
    db[NO_TRADE_MINUTES].create_index([("symbol", ASCENDING), ("ts", ASCENDING)], name="symbol_ts")


def to_document(obs: Observation) -> dict[str, Any]:
    """The stored form of an observation (``ts`` and ``fetched_at`` as BSON dates)."""
    doc: dict[str, Any] = {
        "source": obs.source,
        "symbol": obs.symbol,
        "kind": obs.kind,
        "ts": obs.ts,
        "price": obs.price,
        "volume": obs.volume,
        "fetched_at": obs.fetched_at,
        "run_id": obs.run_id,
    }
    if obs.kind == "candle_1m":
        doc.update(open=obs.open, high=obs.high, low=obs.low, close=obs.close)
    return doc


def upsert_prices(
    prices: Collection[Any], observations: Sequence[Observation], *, now: datetime | None = None
) -> UpsertResult:
    """Write observations idempotently, keyed on ``_id`` = the natural key.

    One unordered ``insert_many`` writes every new observation; keys that already exist (a
    re-delivery, a re-run, a backfill) come back as duplicate-key errors and are then reconciled
    by the overwrite rule in the module docstring. This has the effect of a bulk upsert, but in
    the common case (new data) costs one insert: on FerretDB's SQLite backend an upsert or update
    scans the collection (measured ~40x slower than inserting; see bench/drain_throughput.py).

    Args:
        prices: The ``btc.prices`` collection.
        observations: Valid observations; duplicates within the batch are collapsed by the rule.
        now: When the pipeline stored them (``first_seen_at`` of new documents).

    Returns:
        Counts of inserted, modified and unchanged documents.

    Raises:
        pymongo.errors.PyMongoError: Any failure other than "this key exists already".
    """
    if not observations:
        return UpsertResult(0, 0, 0)
    stored_at = now or datetime.now(UTC)
    latest: dict[str, Observation] = {}
    for obs in observations:
        if _wins(obs, latest.get(obs.key)):
            latest[obs.key] = obs
    docs = [{"_id": key, **to_document(obs), "first_seen_at": stored_at} for key, obs in latest.items()]
    inserted, existing = insert_new(prices, docs)
    modified = _refresh_candles(prices, [latest[key] for key in existing if latest[key].kind == "candle_1m"])
    return UpsertResult(inserted=inserted, modified=modified, unchanged=len(docs) - inserted - modified)


def _wins(new: Observation, old: Observation | None) -> bool:
    """Whether ``new`` replaces ``old`` for the same key (candles: latest fetch; ticks: first)."""
    if old is None:
        return True
    return new.kind == "candle_1m" and new.fetched_at >= old.fetched_at


def _refresh_candles(prices: Collection[Any], candles: Sequence[Observation]) -> int:
    """Apply re-fetched candles whose values changed and whose fetch is not older than the stored one."""
    if not candles:
        return 0
    fields = {"fetched_at": 1, **dict.fromkeys(CANDLE_VALUES, 1)}
    stored = {doc["_id"]: doc for doc in prices.find({"_id": {"$in": [c.key for c in candles]}}, fields)}
    modified = 0
    for obs in candles:
        old = stored.get(obs.key)
        if old is None:
            continue
        new = to_document(obs)
        if all(old.get(name) == new[name] for name in CANDLE_VALUES):
            continue
        old_fetched = old["fetched_at"] if old["fetched_at"].tzinfo else old["fetched_at"].replace(tzinfo=UTC)
        if obs.fetched_at < old_fetched:
            continue  # a stale re-delivery never overwrites a newer fetch
        # compare-and-set on fetched_at: a concurrent newer write wins
        result = prices.update_one({"_id": obs.key, "fetched_at": old["fetched_at"]}, {"$set": new})
        modified += result.modified_count
    return modified
