"""
# btc_heal

Every hour, finds the **holes** in the recent 1-minute candles of `btc.prices` and backfills them
through `btc-metrics` and `btc_drain`, like live data. It is the safety net: the windows of failed
or skipped `btc_ingest` runs are healed at once by the first ingest run that succeeds after them;
this DAG catches what that leaves (a run that failed for good between successful ones, a hole an
exchange could not serve then, minutes deleted by hand).

- **Horizon**: the last `BTC_HEAL_HORIZON_MINUTES` (default 360 = 6 h), ending 10 minutes before
  the run (those belong to the live `btc_ingest`, which may still be retrying them); capped so
  that every exchange in `BTC_EXCHANGES` still serves it (Kraken keeps only 720 minutes).
- **Holes only**: minutes an exchange said it had no trades in (`btc.no_trade_minutes`) are
  skipped, and so are minutes before the first candle the pipeline ever stored (importing
  history is `btc-pipeline backfill`'s job).
- **Same chunks as `btc_backfill`**: `find_gaps` finds the holes, `plan` splits them into chunks (at
  most a day and a whole number of the exchange's pages each), `fetch_and_produce` is mapped over them and produces
  only the minutes still missing (each chunk's success starts `btc_drain`: the topic's asset is its
  outlet), `summarize` writes the totals to `btc.pipeline_runs` and fails
  the run if a chunk failed. The heal produces directly rather than triggering `btc_backfill`,
  so one run shows what it found and what it filled, and never queues behind a long backfill.
- **Timetable**: `CronTriggerTimetable("5 * * * *")`, hourly at :05; `catchup=False` and
  `max_active_runs=1`: a missed hour is covered by the next run's horizon.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from btc_pipeline.dag_ids import HEAL_DAG
from btc_pipeline.tasks import backfill, schedules

TOPIC = schedules.topic_asset(schedules.settings())


@dag(
    dag_id=HEAL_DAG,
    schedule=CronTriggerTimetable("5 * * * *", timezone="UTC"),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "backfill", "heal"],
    doc_md=__doc__,
    on_success_callback=schedules.on_success(schedules.settings()),
    default_args=schedules.retry_args(3, timedelta(seconds=15), timedelta(minutes=2)),
)
def btc_heal() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def find_gaps() -> dict:
        """Find the holes of the horizon (not the minutes without trades, nor those before the first candle)."""
        return backfill.heal_scope(get_current_context()["dag_run"].run_after)

    backfill.plan_and_produce(find_gaps(), [TOPIC])


btc_heal()
