"""Task body of ``btc_retention``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from btc_pipeline.config import load_settings
from btc_pipeline.tasks import hooks
from btc_pipeline.timeutil import floor_minute, format_ts

log = logging.getLogger(__name__)


def expire_ticks(dag_id: str, run_id: str, run_after: datetime) -> dict[str, Any]:
    """``btc_retention.expire_ticks``: delete raw ticks older than ``BTC_TICK_RETENTION_DAYS``.

    Args:
        dag_id: The DAG.
        run_id: The run.
        run_after: When the run was due (the cut-off counts back from it, so a retry cuts the same).

    Returns:
        The cut-off and how many ticks were deleted (0 and no cut-off when retention is off).
    """
    settings = load_settings()
    started = datetime.now(UTC)
    if settings.tick_retention_days == 0:
        log.info("BTC_TICK_RETENTION_DAYS=0: raw ticks are kept forever; nothing to do")
        result: dict[str, Any] = {"retention_days": 0, "cutoff": None, "deleted_ticks": 0}
    else:
        cutoff = floor_minute(run_after) - timedelta(days=settings.tick_retention_days)
        with hooks.store(settings) as store:
            deleted = store.expire_ticks(cutoff)
        log.info("deleted %d tick(s) older than %s", deleted, format_ts(cutoff))
        result = {"retention_days": settings.tick_retention_days, "cutoff": format_ts(cutoff), "deleted_ticks": deleted}
    with hooks.store(settings) as store:
        store.record_run(
            dag_id, run_id, started_at=started, finished_at=datetime.now(UTC), fields={**result, "state": "success"}
        )
    return result
