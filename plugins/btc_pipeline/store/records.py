"""Records the pipeline keeps about itself: rejected messages and run statistics, written
insert-first (see :mod:`btc_pipeline.store.inserts`).

``btc.pipeline_runs`` keeps one document per run, forever; the last runs of each DAG are also
kept in ``runs.latest`` (one small document per DAG), which is what the dashboard and the API
read: reading the newest runs of a collection of millions would decode all of it on FerretDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from btc_pipeline.health import RunRecord
from btc_pipeline.store.inserts import insert_or_replace
from btc_pipeline.store.locks import locked
from btc_pipeline.store.versioned import update_versioned
from btc_pipeline.timeutil import to_utc

RUNS_LATEST = "runs.latest"
REJECTS_SUMMARY = "rejects.summary"
#: Days of reject counts the summary keeps.
KEEP_REJECT_DAYS = 31
#: How many runs of each DAG the hot set keeps.
KEEP_RUNS = 20
#: Fields of a run document too big for the hot set.
HEAVY_FIELDS = ("batch_ms", "empty_minutes", "holes", "tick_prices")


def count_rejects(summary: Collection[Any], docs: Iterable[Mapping[str, Any]], day: str) -> int:
    """Count rejected messages by reason under ``day`` in the one-document summary, exactly once each.

    The summary remembers, per topic partition, the highest offset it counted: a batch read again
    (after a failure before the commit) has offsets it has seen and changes nothing. Days older
    than :data:`KEEP_REJECT_DAYS` are dropped from it (the rejects themselves stay in ``btc.rejects``).

    Args:
        summary: The ``rejects.summary`` collection.
        docs: Reject documents (``topic``, ``partition``, ``offset``, ``reason``).
        day: The UTC day they were rejected on, ``YYYY-MM-DD``.

    Returns:
        How many were counted now.
    """
    rejects = list(docs)
    if not rejects:
        return 0
    counted = 0

    def add(current: Mapping[str, Any] | None) -> dict[str, Any] | None:
        nonlocal counted
        seen: dict[str, int] = dict((current or {}).get("seen", {}))
        days: dict[str, dict[str, int]] = {d: dict(c) for d, c in (current or {}).get("days", {}).items()}
        counted = 0
        for doc in sorted(rejects, key=lambda d: (d["topic"], d["partition"], d["offset"])):
            where = f"{doc['topic']}|{doc['partition']}"
            if doc["offset"] <= seen.get(where, -1):
                continue
            seen[where] = int(doc["offset"])
            day_counts = days.setdefault(day, {})
            day_counts[doc["reason"]] = day_counts.get(doc["reason"], 0) + 1
            counted += 1
        return {"seen": seen, "days": dict(sorted(days.items())[-KEEP_REJECT_DAYS:])} if counted else None

    with locked(summary.database, "rejects.summary"):
        # one drain at a time holds the lock, but a retry may race its predecessor
        return counted if update_versioned(summary, "summary", add) else 0


def run_document(
    dag_id: str, run_id: str, started_at: datetime, finished_at: datetime, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``btc.pipeline_runs`` document of one run: ``_id`` = ``dag_id|run_id``, its times, its fields."""
    return {
        "_id": f"{dag_id}|{run_id}",
        "dag_id": dag_id,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        **fields,
    }


def record_run(runs: Collection[Any], hot: Collection[Any], run: Mapping[str, Any]) -> None:
    """Store the statistics document of one run (a task retry replaces its earlier one), and put it
    at the head of its DAG's last runs."""
    insert_or_replace(runs, run)
    summary = {k: v for k, v in run.items() if k not in HEAVY_FIELDS and k != "_id"}

    def push(current: Mapping[str, Any] | None) -> dict[str, Any]:
        kept = [r for r in (current or {}).get("runs", []) if r.get("run_id") != run["run_id"]]
        return {"runs": sorted([summary, *kept], key=lambda r: to_utc(r["started_at"]), reverse=True)[:KEEP_RUNS]}

    with locked(hot.database, f"runs.latest:{run['dag_id']}"):
        update_versioned(hot, run["dag_id"], push)  # runs of one DAG may finish together


def latest_runs(hot: Collection[Any]) -> list[RunRecord]:
    """The last runs of every DAG, newest first (a run without a state: ``unknown``)."""
    runs = [
        RunRecord(
            dag_id=str(run["dag_id"]),
            run_id=str(run["run_id"]),
            state=str(run.get("state", "unknown")),
            started_at=to_utc(run["started_at"]),
            finished_at=to_utc(run["finished_at"]),
            failed_task=run.get("failed_task"),
            error=run.get("error"),
            lag_after=run.get("lag_after"),
            failed_exchanges=tuple(run.get("failed_exchanges") or {}),
        )
        for doc in hot.find({})
        for run in doc.get("runs", [])
    ]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)
