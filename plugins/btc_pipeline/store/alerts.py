"""Price alerts the pipeline recorded (``alerts.<YYYY-MM>``, one small collection per month) and
the state their evaluation remembers (``alerts.state``, one document)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from btc_pipeline.alerts import Alert, AlertState
from btc_pipeline.store.inserts import insert_by_month
from btc_pipeline.store.layout import month_partitions
from btc_pipeline.store.versioned import write_version
from btc_pipeline.timeutil import to_utc

STATE = "alerts.state"
PARTITION_PREFIX = "alerts"


def load_state(db: Database[Any]) -> tuple[AlertState, int]:
    """The remembered state and its version (0: none yet)."""
    doc = db[STATE].find_one({"_id": "consensus"})
    if not doc:
        return AlertState(), 0
    fired = {kind: to_utc(ts) for kind, ts in (doc.get("move_fired") or {}).items()}
    last_ts = to_utc(doc["last_ts"]) if doc.get("last_ts") else None
    return AlertState(doc.get("last_price"), last_ts, fired), int(doc.get("v", 1))


def save_state(db: Database[Any], state: AlertState, version: int) -> bool:
    """Store ``state`` if it is still at ``version`` (compare-and-set); False when another run won."""
    fields = {"last_price": state.last_price, "last_ts": state.last_ts, "move_fired": dict(state.move_fired)}
    return write_version(db[STATE], "consensus", version, fields)


def record_alerts(db: Database[Any], alerts: Sequence[Alert]) -> int:
    """Store alerts once each (their id is deterministic); returns how many were new."""
    return insert_by_month(db, PARTITION_PREFIX, [alert.to_dict() for alert in alerts])


def recent_alerts(db: Database[Any], now: datetime, within: timedelta) -> list[Alert]:
    """The alerts of the last ``within`` (only the months it spans are read), newest first."""
    since = now - within
    names = month_partitions(PARTITION_PREFIX, since, now + timedelta(microseconds=1))
    alerts = [Alert.from_document(doc) for name in names for doc in db[name].find({})]
    return sorted((a for a in alerts if a.ts >= since), key=lambda a: a.ts, reverse=True)
