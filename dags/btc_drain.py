"""
# btc_drain

Every 30 seconds, drains the Kafka topic `btc-metrics` into MongoDB `btc.prices` in small
batches, with an exactly-once *effect*:

1. consume a batch (consumer group `btc-drain`, auto-commit **off**);
2. validate each message against schema v1; insert the valid ones into `btc.prices` with one
   unordered bulk write keyed on `source|symbol|kind|ts` (the `_id`), so a re-delivered message
   never duplicates (a newer fetch of a candle corrects the stored one);
3. merge them into the **read model** (`bars.*`: 1-minute to daily bars per exchange, the
   cross-exchange consensus, tick bars; `latest`): what the dashboard, the API and `gaps` read;
4. send invalid ones to `btc-metrics-dlq` and `btc.rejects` with the reason;
5. only then commit the offsets, synchronously.

A failure anywhere fails the task before the commit; the retry re-reads the batch, and every
write is idempotent, so that is harmless.

- **Timetable**: `DeltaTriggerTimetable(30 s)`: the drain has no data interval of its own.
- **max_active_runs=1**: two drains in one consumer group would only rebalance each other.
- **Bounded**: at most `BTC_DRAIN_MAX_MESSAGES` messages and `BTC_DRAIN_MAX_SECONDS` per run;
  a run ends as soon as it has caught up.
- Each run writes its counts, consumer lag before/after, bars changed and batch timings to
  `btc.pipeline_runs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DeltaTriggerTimetable, dag, get_current_context, task

from btc_pipeline.tasks import drain as drain_tasks
from btc_pipeline.tasks import hooks


@dag(
    dag_id="btc_drain",
    schedule=DeltaTriggerTimetable(timedelta(seconds=30)),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "drain", "kafka", "mongodb"],
    doc_md=__doc__,
    default_args={
        "on_failure_callback": hooks.record_failed_run,
        "retries": 3,
        "retry_delay": timedelta(seconds=10),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=1),
    },
)
def btc_drain() -> None:
    @task(execution_timeout=timedelta(minutes=3))
    def drain() -> dict:
        """Drain a bounded batch of `btc-metrics` into `btc.prices` (DLQ for bad messages)."""
        ctx = get_current_context()
        return drain_tasks.drain_topic(ctx["dag"].dag_id, ctx["run_id"])

    drain()


btc_drain()
