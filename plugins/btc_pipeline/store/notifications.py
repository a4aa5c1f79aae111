"""Notifications the pipeline sent or failed to send (``btc.notifications``, one document per
delivery to one channel, forever), the last of them (``notifications.latest``, one small document
the dashboard reads), and the state of lasting problems (``notifications.state``: one
:class:`~btc_pipeline.notify.episodes.Episode` per key, e.g. ``dag:btc_ingest`` or ``data``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pymongo.database import Database

from btc_pipeline.notify.episodes import Episode
from btc_pipeline.store.collections import NOTIFICATIONS
from btc_pipeline.store.locks import locked
from btc_pipeline.store.versioned import update_versioned
from btc_pipeline.timeutil import to_utc

LATEST = "notifications.latest"
STATE = "notifications.state"
#: How many deliveries ``notifications.latest`` keeps.
KEEP_LATEST = 30

T = TypeVar("T")


def record_deliveries(db: Database[Any], docs: Sequence[Mapping[str, Any]]) -> None:
    """Store delivery documents (``_id`` unique, made by the caller) and put them at the head of the last ones."""
    if not docs:
        return
    db[NOTIFICATIONS].insert_many([dict(d) for d in docs])

    def push(current: Mapping[str, Any] | None) -> dict[str, Any]:
        kept = [*(dict(d) for d in docs), *(current or {}).get("deliveries", [])]
        return {"deliveries": sorted(kept, key=lambda d: to_utc(d["at"]), reverse=True)[:KEEP_LATEST]}

    with locked(db, LATEST):
        update_versioned(db[LATEST], "latest", push)


def update_episode(db: Database[Any], key: str, change: Callable[[Episode], tuple[T, Episode]]) -> T:
    """Apply ``change`` to the episode of ``key`` and store its new state (compare-and-set, under a lock).

    Args:
        db: The database.
        key: What the episode is about (``dag:btc_ingest``, ``data``).
        change: Given the stored episode, what to say and the new one; free of side effects (it
            may run again when another writer won).

    Returns:
        What ``change`` said on the state that was stored.
    """
    said: list[T] = []

    def apply(current: Mapping[str, Any] | None) -> dict[str, Any] | None:
        before = Episode.from_document(dict(current or {}))
        say, after = change(before)
        said[:] = [say]
        return None if after == before else after.to_dict()

    with locked(db, f"{STATE}:{key}"):
        update_versioned(db[STATE], key, apply)
    return said[0]
