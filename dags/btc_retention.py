"""
# btc_retention

Once a day, deletes the **raw ticks** older than `BTC_TICK_RETENTION_DAYS` days from
`btc.prices` (default `0`: keep everything, and this DAG does nothing).

- **Candles are never expired**: they are the record that `gaps`, the heal and backfills check.
- **Charts keep their history**: the read model's tick bars (`bars.*.<exchange>-ticks.*`) of the
  expired minutes stay; only the individual readings go. A `rollups rebuild` of an expired range
  keeps those bars too (it never removes a bar).
- **Cost**: on the local stack's FerretDB the delete reads all of `btc.prices` once (a few
  minutes for a year of history); on MongoDB the `kind_ts` index serves it.
- **Timetable**: `CronTriggerTimetable("20 0 * * *")`, daily at 00:20 UTC; `catchup=False`: the
  next run covers a missed day. `max_active_runs=1`.
- The run's cut-off and count go to `btc.pipeline_runs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from btc_pipeline.dag_ids import RETENTION_DAG
from btc_pipeline.tasks import retention, schedules


@dag(
    dag_id=RETENTION_DAG,
    schedule=CronTriggerTimetable("20 0 * * *", timezone="UTC"),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "retention", "mongodb"],
    doc_md=__doc__,
    on_success_callback=schedules.on_success(schedules.settings()),
    default_args=schedules.retry_args(2, timedelta(minutes=5), timedelta(minutes=5)),
)
def btc_retention() -> None:
    @task(execution_timeout=timedelta(minutes=30))
    def expire_ticks() -> dict:
        """Delete the raw ticks older than BTC_TICK_RETENTION_DAYS from `btc.prices`."""
        ctx = get_current_context()
        return retention.expire_ticks(ctx["dag"].dag_id, ctx["run_id"], ctx["dag_run"].run_after)

    expire_ticks()


btc_retention()
