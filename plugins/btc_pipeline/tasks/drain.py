"""Task body of ``btc_drain``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from btc_pipeline.config import load_settings
from btc_pipeline.notify import events
from btc_pipeline.notify.deliver import Outbox
from btc_pipeline.steps.drain import drain
from btc_pipeline.tasks import hooks

log = logging.getLogger(__name__)

#: How long a drain run waits, at its end, for its notifications still being sent.
NOTIFY_WAIT_S = 45.0


def drain_topic(dag_id: str, run_id: str, *, history: bool = False) -> dict[str, Any]:
    """``btc_drain.drain`` (``btc_history_drain.drain`` with ``history``): one bounded drain of the
    topic (the history lane's topic) into MongoDB, its statistics recorded.

    The live drain checks the data's freshness for the staleness channel (``BTC_NOTIFY_STALE_URLS``)
    when the run starts and when it ends, in the background (:class:`~btc_pipeline.notify.deliver.Outbox`):
    it runs every 30 s whether or not data comes, so stale data is noticed within about that. It
    also sends the price alerts a run recorded but died before sending (``BTC_NOTIFY_PRICE_URLS``).
    """
    settings = load_settings()
    started_at = datetime.now(UTC)
    check_freshness = bool(settings.notify_targets("stale")) and not history
    with hooks.store(settings) as store:
        outbox = Outbox(secret_urls=settings.all_notify_urls)
        if check_freshness:
            outbox.call(events.check_freshness, store, settings, started_at)
        if not history:
            outbox.call(events.resend_lost_alerts, store, settings, started_at)
        consumer = hooks.batch_consumer(settings, history=history)
        stats = drain(consumer, hooks.producer(settings), store, settings, run_id, history=history, outbox=outbox)
        store.record_run(
            dag_id,
            run_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            fields={**stats.to_dict(), "state": "success"},
        )
        if check_freshness:
            outbox.call(events.check_freshness, store, settings, datetime.now(UTC))
        outbox.close(NOTIFY_WAIT_S)
    log.info("drain: %s", stats.to_dict())
    return stats.to_dict()
