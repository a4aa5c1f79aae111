"""Task body of ``btc_drain``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from btc_pipeline.config import load_settings
from btc_pipeline.steps.drain import drain
from btc_pipeline.tasks import hooks

log = logging.getLogger(__name__)


def drain_topic(dag_id: str, run_id: str, *, history: bool = False) -> dict[str, Any]:
    """``btc_drain.drain`` (``btc_history_drain.drain`` with ``history``): one bounded drain of the
    topic (the history lane's topic) into MongoDB, its statistics recorded."""
    settings = load_settings()
    started_at = datetime.now(UTC)
    with hooks.store(settings) as store:
        consumer = hooks.batch_consumer(settings, history=history)
        stats = drain(consumer, hooks.producer(settings), store, settings, run_id, history=history)
        store.record_run(
            dag_id,
            run_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            fields={**stats.to_dict(), "state": "success"},
        )
    log.info("drain: %s", stats.to_dict())
    return stats.to_dict()
