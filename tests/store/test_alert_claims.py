"""Sending each recorded price alert once (store/alerts.py): claims, their lease, and the sweep that
finds alerts whose sender died, on a real FerretDB."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from btc_pipeline.alerts import Alert
from btc_pipeline.store import Store

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def alert(minutes_ago: float, level: float = 90_000.0) -> Alert:
    ts = NOW - timedelta(minutes=minutes_ago)
    return Alert("above", ts, level + 1, level, message=f"rose above {level:,.2f}")


def test_an_alert_is_claimed_once_and_a_sent_one_never_again(db):
    store, fired = Store(db), [alert(1), alert(2, 95_000.0)]
    store.record_alerts(fired)
    assert store.claim_alerts(fired, NOW, LEASE) == fired
    assert store.claim_alerts(fired, NOW + timedelta(seconds=30), LEASE) == []  # being sent by the first
    store.mark_alert_notified(fired[0], NOW)
    later = NOW + 2 * LEASE
    assert store.claim_alerts(fired, later, LEASE) == [fired[1]]  # its sender died: taken over
    assert store.unsent_alerts(later, HOUR, LEASE) == []  # claimed again just now


def test_an_alert_that_is_not_recorded_is_not_claimed(db):
    assert Store(db).claim_alerts([alert(1)], NOW, LEASE) == []


def test_unsent_alerts_are_those_never_claimed_or_left_by_a_dead_sender_within_the_window(db):
    store = Store(db)
    never, dead, busy, done, old = alert(1), alert(3, 91_000.0), alert(4, 92_000.0), alert(5, 93_000.0), alert(61)
    store.record_alerts([never, dead, busy, done, old])
    store.claim_alerts([dead], NOW - LEASE - timedelta(seconds=1), LEASE)
    store.claim_alerts([busy, done], NOW - timedelta(minutes=1), LEASE)
    store.mark_alert_notified(done, NOW)
    assert store.unsent_alerts(NOW, HOUR, LEASE) == [never, dead]  # newest first; `old` is out of the window


def test_alerts_across_a_month_boundary_are_found_in_both_partitions(db):
    store = Store(db)
    before = Alert("below", datetime(2026, 2, 28, 23, 50, tzinfo=UTC), 80_000.0, 80_500.0, message="fell")
    after = alert(5)
    store.record_alerts([before, after])
    assert store.unsent_alerts(NOW, timedelta(days=2), LEASE) == [after, before]
    assert store.claim_alerts([before, after], NOW, LEASE) == [before, after]


def test_two_senders_racing_for_the_same_alerts_claim_each_once(db):
    fired = [alert(i, 90_000.0 + i) for i in range(1, 9)]
    Store(db).record_alerts(fired)
    claimed: list[list[Alert]] = [[], []]

    def sender(i: int) -> None:
        claimed[i] = Store(db).claim_alerts(fired, NOW, LEASE)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claimed[0] + claimed[1], key=lambda a: a.ts) == sorted(fired, key=lambda a: a.ts)


def test_an_alert_recorded_before_claims_existed_is_not_sent_again(db):
    """Alerts stored by an older version (no ``notify_pending``) were sent by it: an upgrade sends
    none of them a second time."""
    old = alert(2)
    db[f"alerts.{old.ts:%Y-%m}"].insert_one(old.to_dict())
    assert Store(db).unsent_alerts(NOW, HOUR, LEASE) == []
    assert Store(db).claim_alerts([old], NOW, LEASE) == []
