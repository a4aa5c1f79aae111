"""Price alerts the pipeline recorded (``alerts.<YYYY-MM>``, one small collection per month), the
state their evaluation remembers (``alerts.state``, one document), and whether each was sent.

An alert is recorded as waiting to be sent (``notify_pending``). Sending it is claimed on its
document first (``notify_claimed_at``) and marked done after (``notify_pending`` false and
``notified_at``, whatever the delivery's outcome), so an alert goes out once even when two runs see
it, and one whose sender died between the two is found by :func:`unsent_alerts` once the claim's
lease has passed. A sender that dies after the delivery but before the mark sends it twice:
delivery here is at least once. Alerts recorded before this existed have no ``notify_pending`` and
are never sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from btc_pipeline.alerts import Alert, AlertState
from btc_pipeline.store.inserts import insert_by_month
from btc_pipeline.store.layout import month_partition, month_partitions
from btc_pipeline.store.locks import locked
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
    """Store alerts once each (their id is deterministic), waiting to be sent; returns how many were new."""
    return insert_by_month(db, PARTITION_PREFIX, [{**alert.to_dict(), "notify_pending": True} for alert in alerts])


def recent_alerts(db: Database[Any], now: datetime, within: timedelta) -> list[Alert]:
    """The alerts of the last ``within`` (only the months it spans are read), newest first."""
    return [Alert.from_document(doc) for doc in _recent(db, now - within, now)]


def unsent_alerts(db: Database[Any], now: datetime, within: timedelta, lease: timedelta) -> list[Alert]:
    """The alerts of the last ``within`` that were never sent: nobody claimed them, or the claim is
    older than ``lease`` (its sender died). Newest first."""
    return [Alert.from_document(doc) for doc in _recent(db, now - within, now) if _sendable(doc, now, lease)]


def claim_alerts(db: Database[Any], fired: Sequence[Alert], now: datetime, lease: timedelta) -> list[Alert]:
    """Claim the sending of each of ``fired`` that is recorded, not sent, and not being sent by
    another run (a claim older than ``lease`` is taken over).

    Returns:
        The alerts this caller now sends (in order); it marks each with :func:`mark_notified`.
    """
    claimed = []
    with locked(db, f"{PARTITION_PREFIX}.notify"):  # a conditional update is not atomic on FerretDB v1
        for alert in fired:
            partition = db[month_partition(PARTITION_PREFIX, alert.ts)]
            doc = partition.find_one({"_id": alert.id})
            if doc is not None and _sendable(doc, now, lease):
                partition.update_one({"_id": alert.id}, {"$set": {"notify_claimed_at": now}})
                claimed.append(alert)
    return claimed


def mark_notified(db: Database[Any], alert: Alert, now: datetime) -> None:
    """``alert`` was handed to its channels at ``now`` (sent or not: the delivery records say which)."""
    done = {"notify_pending": False, "notified_at": now}
    db[month_partition(PARTITION_PREFIX, alert.ts)].update_one({"_id": alert.id}, {"$set": done})


def _sendable(doc: dict[str, Any], now: datetime, lease: timedelta) -> bool:
    claimed = doc.get("notify_claimed_at")
    return doc.get("notify_pending") is True and (claimed is None or to_utc(claimed) <= now - lease)


def _recent(db: Database[Any], since: datetime, now: datetime) -> list[dict[str, Any]]:
    """The alert documents of ``[since, now]``, newest first (only the months it spans are read)."""
    names = month_partitions(PARTITION_PREFIX, since, now + timedelta(microseconds=1))
    docs = [doc for name in names for doc in db[name].find({}) if to_utc(doc["ts"]) >= since]
    return sorted(docs, key=lambda doc: to_utc(doc["ts"]), reverse=True)
