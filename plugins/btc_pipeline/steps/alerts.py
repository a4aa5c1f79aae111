"""Check the price alerts of ``.env`` against the consensus price, after a drain stored data."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from btc_pipeline.alerts import Alert, AlertRules, evaluate
from btc_pipeline.quotes import quote
from btc_pipeline.store import CONSENSUS
from btc_pipeline.timeutil import floor_minute
from btc_pipeline.window import MINUTE, Window

if TYPE_CHECKING:
    from btc_pipeline.store import Store

log = logging.getLogger(__name__)


def check_alerts(store: Store, rules: AlertRules, now: datetime, *, stale_after_s: float) -> list[Alert]:
    """Evaluate ``rules`` at the current consensus price and record what fires.

    The price is the median of the exchanges' latest readings no older than ``stale_after_s``; the
    reference of a move alert is the consensus 1-minute close one window before it.

    Returns:
        The alerts that fired (already recorded).
    """
    if not rules.active:
        return []
    live = quote(store.latest(), now, max_age_s=stale_after_s)
    if live.consensus is None or live.newest is None:
        return []
    reference = move_reference(store, live.newest, rules.move_window)
    with store.locked("alerts"):
        state, version = store.alert_state()
        fired, new_state = evaluate(rules, state, live.consensus, live.newest, reference)
        store.record_alerts(fired)  # first: a run that dies here redoes the same evaluation, same ids
        if not store.save_alert_state(new_state, version):
            log.info("alerts: another run evaluated meanwhile; its state stands")
    for alert in fired:
        log.warning("ALERT %s", alert.message)
    return fired


def move_reference(store: Store, at: datetime, window: timedelta) -> float | None:
    """What a move alert measures the price at ``at`` against: the consensus 1-minute close of the
    minute ``window`` earlier (``None``: no candle then). The dashboard's page alert uses it too."""
    minute = floor_minute(at - window)
    bars = store.bar_list(CONSENSUS, "1m", Window(minute, minute + MINUTE))
    return bars[0][1].close if bars else None
