"""
# btc_heal

Every hour, finds the **holes** in the recent 1-minute candles of `btc.prices` and backfills them
through `btc-metrics` and `btc_drain`, like live data.

- **Horizon**: the last `BTC_HEAL_HORIZON_MINUTES` (default 360 = 6 h), ending 10 minutes before
  the run (those belong to the live `btc_ingest`, which may still be retrying them); capped so
  that every exchange in `BTC_PROVIDERS` still serves it (Kraken keeps only 720 minutes).
- **Holes only**: minutes an exchange said it had no trades in (`btc.no_trade_minutes`) are
  skipped, and so are minutes before the first candle the pipeline ever stored (importing
  history is `btc-pipeline backfill`'s job).
- **Same chunks as `btc_backfill`**: `find_gaps` plans chunks over the holes (at most a day and a
  whole number of the exchange's pages each), `fetch_and_produce` is mapped over them and produces
  only the minutes still missing, `summarize` writes the totals to `btc.pipeline_runs` and fails
  the run if a chunk failed. The heal produces directly rather than triggering `btc_backfill`,
  so one run shows what it found and what it filled, and never queues behind a long backfill.
- **Timetable**: `CronTriggerTimetable("5 * * * *")`, hourly at :05; `catchup=False` and
  `max_active_runs=1`: a missed hour is covered by the next run's horizon.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, TriggerRule, dag, get_current_context, task

from btc_pipeline import backfill_tasks


@dag(
    dag_id="btc_heal",
    schedule=CronTriggerTimetable("5 * * * *", timezone="UTC"),
    start_date=datetime.fromisoformat("2026-01-01T00:00:00+00:00"),
    catchup=False,
    max_active_runs=1,
    tags=["btc", "backfill", "heal"],
    doc_md=__doc__,
    default_args={
        "retries": 3,
        "retry_delay": timedelta(seconds=15),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=2),
    },
)
def btc_heal() -> None:
    @task(execution_timeout=timedelta(minutes=5))
    def find_gaps() -> list:
        """Find the holes of the horizon and plan chunks over them (the totals go to XCom `summary`)."""
        ctx = get_current_context()
        planned = backfill_tasks.plan_heal_run(ctx["dag_run"].run_after)
        ctx["ti"].xcom_push(key="summary", value=planned["summary"])
        return planned["chunks"]

    @task(execution_timeout=timedelta(minutes=10), map_index_template="{{ chunk_window }}")
    def fetch_and_produce(chunk: dict) -> dict:
        """Fetch one chunk's missing candles and produce them to `btc-metrics`."""
        ctx = get_current_context()
        ctx["chunk_window"] = chunk["label"]  # type: ignore[typeddict-unknown-key]
        return backfill_tasks.run_backfill_chunk(chunk, ctx["run_id"])

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(minutes=2))
    def summarize(chunks: list, results: list) -> dict:
        """Store the run's totals in `btc.pipeline_runs`; fail if a chunk failed."""
        ctx = get_current_context()
        summary = ctx["ti"].xcom_pull(task_ids="find_gaps", key="summary") or {}
        return backfill_tasks.summarize_run(
            ctx["dag"].dag_id, ctx["run_id"], summary, chunks, results, ctx["dag_run"].start_date
        )

    chunks = find_gaps()
    summarize(chunks, fetch_and_produce.expand(chunk=chunks))


btc_heal()
