"""
# btc_drain

Drains the Kafka topic `btc-metrics` into MongoDB `btc.prices` as messages arrive, in small
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

**When it runs** (`AssetOrTimeSchedule`):

- **on arrival**: every task that produces to the topic (`btc_ingest`'s `produce_window` and
  `stream_ticks`, the backfill and heal chunks) declares the topic's asset
  (`kafka://btc_kafka/btc-metrics`) as an outlet; its success is an asset event, and the scheduler
  starts a drain run at once (or, while one is running, as soon as it ends: asset events wait
  while the DAG is at `max_active_runs`);
- **every 30 s** otherwise (`DeltaTriggerTimetable`), for messages produced outside Airflow.

`BTC_DRAIN_TRIGGER=watcher` schedules it instead on an `AssetWatcher` of the topic (a Kafka
consumer in the triggerer, group `btc-drain-arrivals`, connection `btc_kafka_watch`): any message
starts a run, also one produced outside Airflow. Measured against the default (README, "How the
drain is triggered"): no fresher while a run lingers for the next message, and, without the linger,
about 11,000 drain runs a day; so `outlets` is the default.

A run **stays while messages keep coming**: it stores each batch as it arrives (a tick read by
`btc_ingest` is in MongoDB about a second later) and ends after `BTC_DRAIN_IDLE_S` (30 s) without
a message, or after `BTC_DRAIN_MAX_SECONDS` (240 s) or `BTC_DRAIN_MAX_MESSAGES`. With live ingest
(a tick round every 10 s) runs follow each other back to back, a few hundred a day.

- **max_active_runs=1**: two drains in one consumer group would only rebalance each other.
- Each run writes its counts, consumer lag before/after, why it ended, bars changed and batch
  timings to `btc.pipeline_runs`; the price alerts are checked every 10 s while it runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, DeltaTriggerTimetable, dag, get_current_context, task

from btc_pipeline.dag_ids import DRAIN_DAG
from btc_pipeline.tasks import drain as drain_tasks
from btc_pipeline.tasks import schedules

SETTINGS = schedules.settings()


@dag(
    dag_id=DRAIN_DAG,
    schedule=AssetOrTimeSchedule(
        timetable=DeltaTriggerTimetable(timedelta(seconds=30)), assets=schedules.drain_asset(SETTINGS)
    ),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "drain", "kafka", "mongodb"],
    doc_md=__doc__,
    on_success_callback=schedules.on_success(SETTINGS),
    default_args=schedules.retry_args(3, timedelta(seconds=10), timedelta(minutes=1)),
)
def btc_drain() -> None:
    @task(execution_timeout=timedelta(seconds=SETTINGS.drain_max_seconds + 120))
    def drain() -> dict:
        """Store `btc-metrics` in MongoDB as it arrives, until idle or a bound (DLQ for bad messages)."""
        ctx = get_current_context()
        return drain_tasks.drain_topic(ctx["dag"].dag_id, ctx["run_id"])

    drain()


btc_drain()
