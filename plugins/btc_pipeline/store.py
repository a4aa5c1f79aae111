"""MongoDB side: indexes, idempotent upserts of observations, rejects and run records.

Everything here sticks to what FerretDB v1 and MongoDB both support (compound unique indexes,
unordered bulk upserts, ``$match/$sort/$limit/$project/$group``), so the same code runs on the
local stack and in Docker.

Overwrite rule for a key seen twice (re-delivery, re-run, backfill):

- ``candle_1m``: the latest *fetch* wins (``$set``), because a re-run of a window re-reads the
  exchange's settled candle; identical values leave the document unchanged.
- ``tick``: the first one wins (``$setOnInsert``): a tick is a point observation, a re-delivery
  carries nothing newer.

``first_seen_at`` records when the pipeline first stored the observation (for freshness
measurement); it is metadata, never part of the observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database

from btc_pipeline.schema import Observation

PRICES = "prices"
REJECTS = "rejects"
PIPELINE_RUNS = "pipeline_runs"


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
    """Write observations with one unordered bulk upsert keyed on ``_id`` = the natural key.

    Args:
        prices: The ``btc.prices`` collection.
        observations: Valid observations (duplicates within the batch are collapsed, last wins).
        now: When the pipeline stored them (``first_seen_at`` of new documents).

    Returns:
        Counts of inserted, modified and unchanged documents.
    """
    if not observations:
        return UpsertResult(0, 0, 0)
    stored_at = now or datetime.now(UTC)
    latest: dict[str, Observation] = {}
    for obs in observations:
        latest[obs.key] = obs
    ops = []
    for key, obs in latest.items():
        doc = to_document(obs)
        if obs.kind == "tick":
            update = {"$setOnInsert": {**doc, "first_seen_at": stored_at}}
        else:
            update = {"$set": doc, "$setOnInsert": {"first_seen_at": stored_at}}
        ops.append(UpdateOne({"_id": key}, update, upsert=True))
    result = prices.bulk_write(ops, ordered=False)
    inserted = result.upserted_count
    modified = result.modified_count
    return UpsertResult(inserted=inserted, modified=modified, unchanged=len(ops) - inserted - modified)


def record_rejects(rejects: Collection[Any], docs: Iterable[Mapping[str, Any]]) -> int:
    """Store rejected messages, keyed by ``topic|partition|offset`` so a re-read stores them once."""
    ops = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": dict(d)}, upsert=True) for d in docs]
    if not ops:
        return 0
    return rejects.bulk_write(ops, ordered=False).upserted_count


def record_run(runs: Collection[Any], run: Mapping[str, Any]) -> None:
    """Store (or replace, on a task retry) the statistics document of one pipeline run."""
    runs.replace_one({"_id": run["_id"]}, dict(run), upsert=True)
