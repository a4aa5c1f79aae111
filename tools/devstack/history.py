"""The history the local stack loads on its first start (``BTC_HISTORY_ON_START``; unset: a day for
``make demo``), through the normal path."""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime, timedelta

from btc_pipeline.timeutil import format_ts
from btc_pipeline.window import Window, floor_minute
from devstack.config import StackConfig, StackError

log = logging.getLogger("devstack")


def history_on_start(config: StackConfig) -> timedelta:
    """How much history the first start loads: ``BTC_HISTORY_ON_START`` when set (``0``: none),
    else 24 hours for ``make demo`` and none for ``make up`` (live exchanges' rate limits)."""
    configured = config.settings.history_on_start
    if configured is not None:
        return configured
    return timedelta(hours=24) if config.mode == "demo" else timedelta(0)


def history_to_seed(first: datetime | None, now: datetime, hours: float) -> Window | None:
    """What ``make demo`` backfills on start: the part of the last ``hours`` before the first stored
    candle, or ``None`` when the history already reaches that far back.

    The first live ``btc_ingest`` run may store a candle before the stack is ready, so "no candle
    yet" is not the test of a first start; "less history than the seed" is.

    Args:
        first: The oldest stored candle's minute (``None``: nothing stored).
        now: The current time.
        hours: How much history the demo shows from the start.
    """
    start = floor_minute(now) - timedelta(hours=hours)
    end = floor_minute(now) if first is None else min(first, floor_minute(now))
    return Window(start, end) if end > start else None


def seed_history(config: StackConfig, *, hours: float | None = None) -> str:
    """When the stored history is shorter than ``hours`` (default :func:`history_on_start`; a first
    start), backfill what is missing of the last ``hours`` from the exchanges through the normal path
    (``btc-pipeline backfill`` -> ``btc_backfill`` -> the history lane -> ``btc_history_drain``), so
    that the dashboard has history to show within a minute. ``make demo`` and ``make up`` do this.

    Returns:
        What was done, for the summary.

    Raises:
        StackError: The history could not be read, or the backfill could not be triggered.
    """
    from btc_pipeline.store import Store, StoreError

    try:
        store = Store.connect(config.mongo_uri, config.settings.mongo_db)
        first = store.first_candle()
        store.close()
    except StoreError as exc:
        raise StackError(f"cannot check for history: {exc}") from None
    if hours is None:
        hours = history_on_start(config) / timedelta(hours=1)
    if hours <= 0:
        return "none loaded (BTC_HISTORY_ON_START)"
    seed = history_to_seed(first, datetime.now(UTC), hours)
    if seed is None:
        return f"history since {first:%Y-%m-%d %H:%M} UTC kept"
    span = ["--from", format_ts(seed.start), "--to", format_ts(seed.end)]
    argv = [str(config.bin / "btc-pipeline"), "backfill", "--missing", *span, "--no-wait"]
    # the stack is up: the DAG processor has listed btc_backfill (devstack.airflow), and the CLI's
    # client waits out a busy metadata database itself
    proc = subprocess.run(argv, env=config.pipeline_cli_env(), capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise StackError(f"could not start the first backfill: {proc.stderr.strip()[-500:]}")
    log.info("seeded: %s", proc.stdout.strip().splitlines()[0] if proc.stdout else "")
    return (
        f"backfilling {format_ts(seed.start)} -> {format_ts(seed.end)} from the exchanges "
        "(a btc_backfill run; see the Airflow UI)"
    )
