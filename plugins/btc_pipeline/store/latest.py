"""The hot set of the live view: the newest candle and the newest tick of each exchange, in one
tiny collection (``btc.latest``, ``_id`` = ``source|kind``) that the drain keeps current.

The dashboard and the API read it every few seconds: a handful of documents, whatever the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from btc_pipeline.health import LatestObservation
from btc_pipeline.schema import Observation
from btc_pipeline.store.locks import locked
from btc_pipeline.store.prices import to_document
from btc_pipeline.timeutil import plausible_at, to_utc

LATEST = "latest"


def update_latest(latest: Collection[Any], observations: Iterable[Observation], stored_at: datetime) -> int:
    """Keep the newest observation of each exchange and kind; older or equal ones change nothing.

    Compare-and-set on the stored ``ts``: a concurrent writer with a newer observation wins.

    Returns:
        How many entries changed.
    """
    candidates: dict[str, Observation] = {}  # the newest per source|kind
    for obs in observations:
        key = f"{obs.source}|{obs.kind}"
        if key not in candidates or obs.ts > candidates[key].ts:
            candidates[key] = obs
    if not candidates:
        return 0
    with locked(latest.database, "latest"):
        stored = {doc["_id"]: to_utc(doc["ts"]) for doc in latest.find({}, {"ts": 1})}
        changed = 0
        for key, obs in candidates.items():
            doc = {"_id": key, **to_document(obs), "stored_at": stored_at}
            old = stored.get(key)
            if old is None:
                try:
                    latest.insert_one(doc)
                    changed += 1
                    continue
                except DuplicateKeyError:
                    current = latest.find_one({"_id": key}, {"ts": 1})
                    old = to_utc(current["ts"]) if current else None
            if old is not None and (obs.ts > old or not plausible_at(old, stored_at)):
                # an entry from the future (stored before the drain refused such times) would hold the
                # live price forever: a plausible observation replaces it
                changed += latest.replace_one({"_id": key, "ts": old}, doc).matched_count
    return changed


def read_latest(latest: Collection[Any]) -> list[LatestObservation]:
    """Every entry of the hot set."""
    return [
        LatestObservation(str(doc["source"]), str(doc["kind"]), to_utc(doc["ts"]), float(doc["price"]))
        for doc in latest.find({})
    ]
