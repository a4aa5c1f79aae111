"""History loads: one small document per history backfill run (``history.loads``), written when
its chunks are planned and when it ends, so that the dashboard can say that history is loading,
how far it is and when it will be done, instead of drawing a half-filled chart.

How much of a load's range is stored is read from the read model's daily bars of the consensus
(their ``n`` counts the minutes with a candle): one or two documents per year of history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from btc_pipeline.store.inserts import insert_or_replace
from btc_pipeline.timeutil import to_utc
from btc_pipeline.window import Window

HISTORY_LOADS = "history.loads"


@dataclass(frozen=True)
class HistoryLoad:
    """A history backfill run: its range, its minutes planned and stored before it, and its state."""

    run_id: str
    window: Window
    planned_minutes: int
    present_before: int
    started_at: datetime
    state: str
    finished_at: datetime | None = None


def record_start(loads: Collection[Any], load: HistoryLoad) -> None:
    """Record a load as running (a task retry replaces its earlier record)."""
    insert_or_replace(
        loads,
        {
            "_id": load.run_id,
            "start": load.window.start,
            "end": load.window.end,
            "planned_minutes": load.planned_minutes,
            "present_before": load.present_before,
            "started_at": load.started_at,
            "state": load.state,
            "finished_at": None,
        },
    )


def latest_load(loads: Collection[Any]) -> HistoryLoad | None:
    """The load started last (``None``: none yet)."""
    docs = list(loads.find({}))
    if not docs:
        return None
    doc = max(docs, key=lambda d: to_utc(d["started_at"]))
    return HistoryLoad(
        run_id=str(doc["_id"]),
        window=Window(to_utc(doc["start"]), to_utc(doc["end"])),
        planned_minutes=int(doc["planned_minutes"]),
        present_before=int(doc.get("present_before", 0)),
        started_at=to_utc(doc["started_at"]),
        state=str(doc["state"]),
        finished_at=to_utc(doc["finished_at"]) if doc.get("finished_at") else None,
    )
