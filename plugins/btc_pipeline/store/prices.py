"""``btc.prices``, the system of record: idempotent writes of observations, and its indexes.

Everything here sticks to what FerretDB v1 and MongoDB both support (compound unique indexes,
unordered bulk inserts, ``$in``), so the same code runs on the local stack and in Docker.

Overwrite rule for a key seen twice (re-delivery, re-run, backfill):

- ``candle_1m``: the latest *fetch* wins: a re-run of a window re-reads the exchange's settled
  candle, which may correct a candle fetched seconds after the minute closed. A re-delivered
  message with an older ``fetched_at`` never overwrites a newer one; identical values leave the
  document untouched.
- ``tick``: the first one wins: a tick is a point observation, a re-delivery carries nothing newer.

How a batch is written (:func:`insert_observations`, then :func:`correct_candles`): one unordered
``insert_many`` of everything; keys that already exist come back as duplicates. For a duplicate
candle, what ``btc.prices`` holds is known from the read model's 1-minute bar of that exchange
(same values, same fetch time), so deciding whether it is a correction reads a bucket of an hour,
not ``btc.prices``: on FerretDB any read of ``btc.prices`` decodes the whole collection. Only when
the read model has no bar for a duplicate (a drain that died between the two writes, or data from
before the read model) is ``btc.prices`` asked, once per batch, for those keys.

``first_seen_at`` records when the pipeline first stored the observation (for freshness
measurement); it is metadata, never part of the observation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.database import Database

from btc_pipeline.bars import Bar, candle_wins
from btc_pipeline.schema import Observation
from btc_pipeline.store.collections import NO_TRADE_MINUTES, PIPELINE_RUNS, PRICES, REJECTS
from btc_pipeline.store.inserts import insert_new
from btc_pipeline.store.layout import epoch_ms


def ensure_indexes(db: Database[Any]) -> None:
    """Create the indexes of the records; safe to call on every run (the read model's collections
    are read whole or by ``_id``, which MongoDB always indexes)."""
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


def collapse(observations: Sequence[Observation]) -> dict[str, Observation]:
    """One observation per key, by the overwrite rule (a batch may carry a key twice)."""
    latest: dict[str, Observation] = {}
    for obs in observations:
        old = latest.get(obs.key)  # candles: the latest fetch wins; ticks: the first
        if old is None or (obs.kind == "candle_1m" and obs.fetched_at >= old.fetched_at):
            latest[obs.key] = obs
    return latest


def insert_observations(
    prices: Collection[Any], observations: Mapping[str, Observation], stored_at: datetime
) -> tuple[int, list[str]]:
    """Insert every observation whose key is new, with one unordered bulk insert.

    Returns:
        How many were inserted, and the keys that existed already.
    """
    docs = [{"_id": key, **to_document(obs), "first_seen_at": stored_at} for key, obs in observations.items()]
    inserted, existing = insert_new(prices, docs)
    return inserted, [str(key) for key in existing]


def candle_bar(obs: Observation) -> Bar:
    """The 1-minute bar of an exchange's candle (its fetch time decides which version wins)."""
    assert obs.open is not None and obs.high is not None and obs.low is not None and obs.close is not None
    return Bar(obs.open, obs.high, obs.low, obs.close, obs.volume, 1, fetched=epoch_ms(obs.fetched_at))


def candle_of(doc: Mapping[str, Any]) -> Bar:
    """A stored candle document as a 1-minute bar (its fetch time included)."""
    return Bar(
        doc["open"], doc["high"], doc["low"], doc["close"], doc.get("volume"), 1, fetched=epoch_ms(doc["fetched_at"])
    )


def correct_candles(
    prices: Collection[Any], existing: Iterable[Observation], stored_bar: Callable[[str, datetime], Bar | None]
) -> tuple[int, dict[str, dict[datetime, Bar]]]:
    """Write the candles whose key existed that win over the stored document (compare-and-set on
    the fetch time); ticks among them are left as stored (the first one wins).

    Args:
        prices: The ``btc.prices`` collection.
        existing: Observations whose key was already stored.
        stored_bar: The read model's bar of an exchange and minute (``None``: it has none).

    Returns:
        How many documents changed, and, by exchange and minute, the stored versions to keep that
        the read model did not know (so that it catches up with ``btc.prices``).
    """
    corrections: list[Observation] = []
    unknown: list[Observation] = []
    for obs in existing:
        if obs.kind != "candle_1m":
            continue
        stored = stored_bar(obs.source, obs.ts)
        if stored is None:
            unknown.append(obs)
        elif candle_wins(candle_bar(obs), stored):
            corrections.append(obs)
    kept: dict[str, dict[datetime, Bar]] = defaultdict(dict)
    if unknown:
        fields = {"open": 1, "high": 1, "low": 1, "close": 1, "volume": 1, "fetched_at": 1}
        stored_docs = {doc["_id"]: doc for doc in prices.find({"_id": {"$in": [o.key for o in unknown]}}, fields)}
        for obs in unknown:
            doc = stored_docs.get(obs.key)
            stored = candle_of(doc) if doc else None
            if candle_wins(candle_bar(obs), stored):
                corrections.append(obs)
            elif stored is not None:
                kept[obs.source][obs.ts] = stored
    # On FerretDB each update scans btc.prices; corrections are rare (a re-fetch that changed a
    # settled candle), the common re-delivery never gets here.
    modified = 0
    for obs in corrections:
        result = prices.update_one({"_id": obs.key, "fetched_at": {"$lt": obs.fetched_at}}, {"$set": to_document(obs)})
        modified += result.modified_count
    return modified, dict(kept)
